using Blockshot.Core;
using Blockshot.Core.Buffers;
using Blockshot.Core.Platform;
using Blockshot.Snapshots.Cbw;
using Blockshot.Snapshots.Persistence;
using Blockshot.Snapshots.Storage;

namespace Blockshot.Snapshots;

/// <summary>Persistent snapshots: the exception log, reopening after a restart, heartbeats, clean close.</summary>
public sealed partial class CbwFilter
{
    private ExceptionLog? _log;
    private SnapshotPersistence? _persistence;
    private volatile bool _writesSinceHeartbeat;
    private long _heartbeatTicks;
    private long _renewAfterTicks = long.MaxValue;
    private readonly SemaphoreSlim _renewGate = new(1, 1);
    private CancellationTokenSource? _heartbeatStop;
    private Task? _heartbeat;

    /// <summary>True when the snapshots survive a restart.</summary>
    public bool IsPersistent => _log is not null;

    /// <summary>
    /// Creates a filter whose snapshots survive restarts, reopening those its log holds. A snapshot
    /// comes back only if it can be proven that nothing wrote the origin while it was unprotected (a
    /// clean close with the origin unchanged, or an unclean stop with no later change to the origin
    /// file); otherwise it comes back failed, with the reason — never with wrong data.
    /// </summary>
    public static async Task<CbwFilter> OpenPersistentAsync(BlockNode origin, DiffStore store, SnapshotPersistence persistence, BufferPool? pool = null)
    {
        ArgumentNullException.ThrowIfNull(persistence);
        var filter = new CbwFilter(origin, store, pool);
        var (log, header, records) = await Task.Run(() => ExceptionLog.Open(persistence.LogPath, () => store.FlushAsync())).ConfigureAwait(false);
        filter._log = log;
        filter._persistence = persistence;
        try
        {
            var identity = persistence.Identity?.Invoke() ?? DeviceIdentity.Unknown;
            var problem = header is null ? null : Verdict(header, filter, identity, persistence);
            await filter.RestoreAsync(records, problem).ConfigureAwait(false);
            filter._renewAfterTicks = persistence.Lease.Ticks / 2;
            filter.WriteHeartbeat(log);
        }
        catch
        {
            log.Dispose();
            throw;
        }
        filter.StartHeartbeat();
        return filter;
    }

    /// <summary>
    /// Makes everything durable and records a clean stop with the origin's identity; call after the
    /// origin is flushed, with no writes in flight. The snapshots reopen as they are.
    /// </summary>
    public async Task CloseAsync()
    {
        await StopHeartbeatAsync().ConfigureAwait(false);
        if (_log is null || _log.Problem is not null)
        {
            return;
        }
        await Store.FlushAsync().ConfigureAwait(false);
        var identity = _persistence?.Identity?.Invoke() ?? DeviceIdentity.Unknown;
        await Task.Run(() => _log.WriteHeader(ExceptionLog.HeaderFor(ChunkSize, OriginSize, clean: true, identity))).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    protected override async ValueTask DisposeCoreAsync()
    {
        await StopHeartbeatAsync().ConfigureAwait(false);
        _log?.Dispose();
        await base.DisposeCoreAsync().ConfigureAwait(false);
    }

    private static string? Verdict(LogHeader header, CbwFilter filter, DeviceIdentity now, SnapshotPersistence persistence)
    {
        if (header.ChunkSize != filter.ChunkSize || header.OriginSize != filter.OriginSize)
        {
            return $"the device or chunk size changed (log: {header.OriginSize} bytes in {header.ChunkSize}-byte chunks)";
        }
        if (header.Clean)
        {
            var then = new DeviceIdentity(header.OriginDevice, header.OriginInode, header.OriginSize, header.OriginModifiedTicks);
            return then.CanDetectWrites && now.CanDetectWrites && then.ModifiedTicks == now.ModifiedTicks && then.Inode == now.Inode
                ? null
                : then.CanDetectWrites && now.CanDetectWrites
                    ? "the device was written while its snapshots were not protected"
                    : "the device cannot show whether anything wrote it while its snapshots were not protected";
        }
        if (!now.CanDetectWrites)
        {
            return "the snapshots were not closed cleanly and the device cannot show whether anything wrote it since";
        }
        return now.ModifiedTicks > header.HeartbeatTicks + persistence.Lease.Ticks
            ? "the snapshots were not closed cleanly and the device was modified afterwards"
            : null;
    }

    private async Task RestoreAsync(List<LogRecord> records, string? problem)
    {
        var byNumber = new Dictionary<long, Snapshot>();
        foreach (var r in records)
        {
            switch (r.Type)
            {
                case LogRecordType.Created:
                    var options = new SnapshotOptions
                    {
                        OnOverflow = (OverflowPolicy)r.Policy,
                        AfterWait = (OverflowPolicy)r.AfterWait,
                        Writable = r.Writable,
                        WaitTimeout = TimeSpan.FromTicks(r.WaitTicks),
                    };
                    byNumber[r.Snapshot] = new Snapshot(this, r.Text ?? "", r.Snapshot, options, ChunkCount, new DateTimeOffset(r.Ticks, TimeSpan.Zero));
                    _nextNumber = Math.Max(_nextNumber, r.Snapshot + 1);
                    break;
                case LogRecordType.Entry when byNumber.TryGetValue(r.Snapshot, out var s) && r.Chunk >= 0 && r.Chunk < ChunkCount:
                    s.Table[r.Chunk] = r.Entry;
                    break;
                case LogRecordType.Removed:
                    byNumber.Remove(r.Snapshot);
                    break;
                case LogRecordType.Failed when byNumber.TryGetValue(r.Snapshot, out var f):
                    f.MarkFailed(r.Text ?? "failed before the restart");
                    break;
            }
        }
        var used = new HashSet<long>();
        foreach (var s in byNumber.Values)
        {
            if (problem is not null)
            {
                s.MarkFailed(problem);
            }
            if (!s.IsActive)
            {
                s.Table.Clear();
                continue;
            }
            s.Table.ForEach((_, entry) =>
            {
                if (ChunkTable.IsSlot(entry))
                {
                    var slot = ChunkTable.ToSlot(entry);
                    used.Add(slot);
                    AddRef(slot, 1);
                }
            });
        }
        await Store.RestoreAsync(used).ConfigureAwait(false);
        lock (_sync)
        {
            _snapshots = [.. byNumber.Values.OrderBy(s => s.Number)];
        }
    }

    private static LogRecord CreatedRecord(Snapshot s) => new(
        LogRecordType.Created, s.Number, Text: s.Name, Ticks: s.TakenAt.UtcTicks,
        Policy: (byte)s.Options.OnOverflow, AfterWait: (byte)s.Options.AfterWait, Writable: s.Options.Writable,
        WaitTicks: s.Options.WaitTimeout.Ticks);

    // Caller holds the chunk's exclusive lock. False when the log failed.
    private async ValueTask<bool> RecordEntriesAsync(Snapshot[] snapshots, long chunk, uint entry)
    {
        var records = new List<LogRecord>();
        foreach (var s in snapshots)
        {
            if (s.IsActive && s.Table[chunk] == entry)
            {
                records.Add(new LogRecord(LogRecordType.Entry, s.Number, chunk, entry));
            }
        }
        try
        {
            await _log!.AppendAsync([.. records]).ConfigureAwait(false);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Records a snapshot's new entry for a chunk (image writes and discards); the caller holds the chunk lock.</summary>
    internal async ValueTask RecordEntryAsync(Snapshot snapshot, long chunk, uint entry)
    {
        if (_log is not null)
        {
            await _log.AppendAsync(new LogRecord(LogRecordType.Entry, snapshot.Number, chunk, entry)).ConfigureAwait(false);
        }
    }

    private async Task RecordBestEffortAsync(LogRecord record)
    {
        if (_log is null || _log.Problem is not null)
        {
            return;
        }
        try
        {
            await _log.AppendAsync(record).ConfigureAwait(false);
        }
        catch (IOException)
        {
            // The log is broken; the failure is reported through ExceptionLog.Problem.
        }
    }

    private void StartHeartbeat()
    {
        var stop = new CancellationTokenSource();
        _heartbeatStop = stop;
        var interval = _persistence?.Heartbeat ?? TimeSpan.FromSeconds(1);
        _heartbeat = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(interval);
            try
            {
                while (await timer.WaitForNextTickAsync(stop.Token).ConfigureAwait(false))
                {
                    if (_writesSinceHeartbeat && _log is { Problem: null } log)
                    {
                        _writesSinceHeartbeat = false;
                        WriteHeartbeat(log);
                    }
                }
            }
            catch (OperationCanceledException)
            {
                // Stopped by close or dispose.
            }
            catch (IOException)
            {
                // The log's disk failed; the stale heartbeat will mark the snapshots unprovable after a restart.
            }
        }, CancellationToken.None);
    }

    /// <summary>True when a write must renew the heartbeat before it reaches the origin.</summary>
    private bool HeartbeatIsStale => DateTime.UtcNow.Ticks - Volatile.Read(ref _heartbeatTicks) > _renewAfterTicks;

    /// <summary>Records durably that the origin is protected as of now (an unclean, current header).</summary>
    private void WriteHeartbeat(ExceptionLog log)
    {
        var header = ExceptionLog.HeaderFor(ChunkSize, OriginSize, clean: false, DeviceIdentity.Unknown);
        log.WriteHeader(header);
        Volatile.Write(ref _heartbeatTicks, header.HeartbeatTicks);
    }

    /// <summary>
    /// Renews a stale heartbeat before a write goes on (the first write after an idle spell, or when a
    /// loaded machine starved the timer), so the write cannot look foreign after an unclean stop.
    /// </summary>
    private async Task RenewHeartbeatAsync()
    {
        await _renewGate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (HeartbeatIsStale && _log is { Problem: null } log)
            {
                await Task.Run(() => WriteHeartbeat(log)).ConfigureAwait(false);
            }
        }
        catch (IOException)
        {
            // The log's disk failed: the write goes on and later ones stop trying; after an unclean stop
            // the stale heartbeat makes the snapshots come back failed (unprovable), never wrong.
            _renewAfterTicks = long.MaxValue;
        }
        finally
        {
            _renewGate.Release();
        }
    }

    private async Task StopHeartbeatAsync()
    {
        if (_heartbeatStop is { } stop && _heartbeat is { } beat)
        {
            await stop.CancelAsync().ConfigureAwait(false);
            await beat.ConfigureAwait(false);
            stop.Dispose();
            _heartbeatStop = null;
            _heartbeat = null;
        }
    }
}
