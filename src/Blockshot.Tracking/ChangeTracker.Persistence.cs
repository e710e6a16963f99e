using System.Numerics;
using Blockshot.Core;
using Blockshot.Core.Platform;
using Blockshot.Tracking.Persistence;

namespace Blockshot.Tracking;

/// <summary>The sidecar: opening with proof (or a new generation), group commits, heartbeats, clean close.</summary>
public sealed partial class ChangeTracker
{
    // Group commit. Guarded by _commitLock.
    private readonly object _commitLock = new();
    private HashSet<long> _pending = [];
    private HashSet<long> _spare = [];
    private TaskCompletionSource? _batch;
    private bool _committing;

    // Guarded by _commitLock: the pages the committer is writing now, and the batch that completes
    // when they are durable.
    private HashSet<long>? _writing;
    private TaskCompletionSource? _writingBatch;

    // First writes whose marks are set in memory but not yet durable. While any exist, a write that
    // finds its blocks marked checks that the marks it relies on are committed.
    private int _marking;

    private long _commits;

    private bool _writesSinceHeartbeat;
    private long _heartbeatTicks;
    private string? _persistenceBroken;
    private CancellationTokenSource? _heartbeatStop;
    private Task? _heartbeat;

    /// <summary>
    /// Attaches tracking to <paramref name="next"/>. With a sidecar that proves the map complete (a clean
    /// close with the device untouched since, or an unclean stop with no later write to the device),
    /// tracking continues in its generation; otherwise a new generation begins and says why.
    /// </summary>
    public static Task<ChangeTracker> OpenAsync(BlockNode next, TrackerOptions options)
    {
        ArgumentNullException.ThrowIfNull(next);
        ArgumentNullException.ThrowIfNull(options);
        if (!BitOperations.IsPow2(options.BlockSize) || options.BlockSize < 4096)
        {
            throw new ArgumentException("the tracking block size must be a power of two of at least 4 KiB", nameof(options));
        }
        if (!BitOperations.IsPow2(options.DurableRegionSize))
        {
            throw new ArgumentException("the durable region size must be a power of two", nameof(options));
        }
        if (options.SidecarPath is null)
        {
            return Task.FromResult(new ChangeTracker(next, options, null, Guid.NewGuid(), "first attach (tracking in memory only)", 1, 0));
        }
        return Task.Run(() => OpenPersistent(next, options));
    }

    private static ChangeTracker OpenPersistent(BlockNode next, TrackerOptions options)
    {
        var file = MapFile.Open(options.SidecarPath!);
        try
        {
            var header = file.ReadHeader();
            var identity = options.Identity?.Invoke() ?? DeviceIdentity.Unknown;
            var problem = Verdict(header, next.Size, options, identity);
            ChangeTracker tracker;
            if (problem is null)
            {
                tracker = new ChangeTracker(next, options, file, header!.Generation, header.GenerationReason, header.Period, header.Sequence);
                var page = new byte[ChangeMap.PageSize];
                byte highest = header.Period;
                for (long p = 0; p < tracker._map.PageCount; p++)
                {
                    file.ReadPage(p, page);
                    tracker._map.LoadPage(p, page);
                    foreach (var b in page)
                    {
                        highest = Math.Max(highest, b);
                    }
                }
                tracker._period = highest; // a crash between marking and the header's period update
                lock (tracker._sync)
                {
                    tracker.PersistHeader(clean: false);
                }
            }
            else
            {
                tracker = new ChangeTracker(next, options, file, Guid.NewGuid(), problem, 1, header?.Sequence ?? 0);
                lock (tracker._sync)
                {
                    tracker.StartGeneration(problem);
                }
            }
            tracker.StartHeartbeat();
            return tracker;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Null when the sidecar proves the map complete; otherwise why a new generation must begin.</summary>
    private static string? Verdict(MapHeader? header, long deviceSize, TrackerOptions options, DeviceIdentity now)
    {
        if (header is null)
        {
            return "first attach (no usable sidecar)";
        }
        if (header.BlockSize != options.BlockSize)
        {
            return $"the tracking block size changed from {header.BlockSize} to {options.BlockSize}";
        }
        if (header.DeviceSize != deviceSize)
        {
            return $"the device was resized from {header.DeviceSize} to {deviceSize} bytes";
        }
        if (header.Clean)
        {
            if (header.Identity != now)
            {
                return now.CanDetectWrites && header.Identity.CanDetectWrites
                    ? $"something else wrote the device after tracking stopped (modified {new DateTime(now.ModifiedTicks, DateTimeKind.Utc):u})"
                    : "the device's identity changed while it was not tracked";
            }
            return null;
        }
        // Unclean stop: every write that reached the device was marked durably first. What cannot be
        // proven is that nothing else wrote it since; for a file, its modification time can.
        if (!now.CanDetectWrites)
        {
            return "tracking stopped uncleanly and the device cannot show whether anything wrote it since";
        }
        if (now.ModifiedTicks > header.HeartbeatTicks + options.Lease.Ticks || now.Inode != header.Identity.Inode && header.Identity.Inode != 0)
        {
            return $"tracking stopped uncleanly and the device was modified afterwards ({new DateTime(now.ModifiedTicks, DateTimeKind.Utc):u})";
        }
        return null;
    }

    /// <summary>Writes the whole map and a clean header (the device must be flushed first); tracking can resume from it.</summary>
    public async Task CloseAsync()
    {
        await StopHeartbeatAsync().ConfigureAwait(false);
        if (_file is null || _persistenceBroken is not null)
        {
            return;
        }
        await Task.Run(() =>
        {
            lock (_commitLock)
            {
                var page = new byte[ChangeMap.PageSize];
                for (long p = 0; p < _map.PageCount; p++)
                {
                    _map.CopyPage(p, page);
                    _file.WritePage(p, page);
                }
                _file.Sync();
            }
            lock (_sync)
            {
                PersistHeader(clean: true);
            }
        }).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    protected override async ValueTask DisposeCoreAsync()
    {
        await StopHeartbeatAsync().ConfigureAwait(false);
        _file?.Dispose();
        await base.DisposeCoreAsync().ConfigureAwait(false);
    }

    // A first change of some block in the period: marks it and waits until the mark is durable, which
    // its region's mark (DurableRegions) may already make it. The marks and their pages' entries in the
    // pending set change together under _commitLock, so a writer that sees a mark finds the commit it must
    // wait for.
    private async Task MarkDurablyAsync(ChangeMap map, long first, long last, byte period)
    {
        Interlocked.Increment(ref _marking);
        try
        {
            Task commit;
            var start = false;
            var (firstPage, lastPage) = (first >> ChangeMap.PageShift, last >> ChangeMap.PageShift);
            lock (_commitLock)
            {
                if (!map.Mark(first, last, period, null))
                {
                    commit = PendingCommit(firstPage, lastPage); // another writer marked them meanwhile
                }
                else if (!Volatile.Read(ref _regions).Cover(first, last, period, _pending))
                {
                    // Their regions' marks are durable already, or queued: the write waits for that commit only.
                    commit = PendingCommit(firstPage, lastPage);
                }
                else
                {
                    commit = (_batch ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
                    if (!_committing)
                    {
                        _committing = start = true;
                    }
                }
            }
            if (start)
            {
                _ = Task.Run(CommitLoop);
            }
            await commit.ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _marking);
        }
    }

    private Task UntilDurableAsync(long firstPage, long lastPage)
    {
        lock (_commitLock)
        {
            return PendingCommit(firstPage, lastPage);
        }
    }

    // Caller holds _commitLock. The commit that makes the pages' current marks durable (done if none).
    private Task PendingCommit(long firstPage, long lastPage)
    {
        Task? writing = null;
        for (var p = firstPage; p <= lastPage; p++)
        {
            if (_pending.Contains(p))
            {
                return _batch!.Task; // queued: the next batch writes it (and comes after the current one)
            }
            if (writing is null && _writing is not null && _writing.Contains(p))
            {
                writing = _writingBatch!.Task;
            }
        }
        return writing ?? Task.CompletedTask;
    }

    private void CommitLoop()
    {
        var page = new byte[ChangeMap.PageSize];
        while (true)
        {
            HashSet<long> pages;
            TaskCompletionSource batch;
            lock (_commitLock)
            {
                if (_pending.Count == 0)
                {
                    _committing = false;
                    return;
                }
                pages = _pending;
                _pending = _spare;
                _spare = pages;
                batch = _batch!;
                _batch = null;
                _writing = pages;
                _writingBatch = batch;
            }
            try
            {
                var map = Volatile.Read(ref _map);
                var regions = Volatile.Read(ref _regions);
                foreach (var p in pages)
                {
                    if (p < map.PageCount) // a resize may have replaced the map since the page was queued
                    {
                        map.CopyPage(p, page);
                        regions.Render(p, page);
                        _file!.WritePage(p, page);
                    }
                }
                _file!.Sync();
                Interlocked.Increment(ref _commits);
            }
            catch (IOException e)
            {
                // The device must not suffer: stop persisting (the next open will see the stale
                // heartbeat and start a new generation) and let writes go on.
                _persistenceBroken = e.Message;
            }
            lock (_commitLock)
            {
                _writing = null;
                _writingBatch = null;
                pages.Clear();
            }
            batch.SetResult();
        }
    }

    // Caller holds _sync. Header writes are rare (open, period change, heartbeat, close).
    private void PersistHeader(bool clean)
    {
        if (_file is null || _persistenceBroken is not null)
        {
            return;
        }
        var header = new MapHeader
        {
            Sequence = ++_sequence,
            BlockSize = BlockSize,
            DeviceSize = DeviceSize,
            Generation = _generation,
            Period = _period,
            Clean = clean,
            Identity = clean ? _options.Identity?.Invoke() ?? DeviceIdentity.Unknown : DeviceIdentity.Unknown,
            HeartbeatTicks = DateTime.UtcNow.Ticks,
            GenerationReason = _reason,
        };
        try
        {
            _file.WriteHeader(header);
            Volatile.Write(ref _heartbeatTicks, header.HeartbeatTicks);
        }
        catch (IOException e)
        {
            _persistenceBroken = e.Message;
        }
    }

    /// <summary>True when a write must renew the heartbeat before it reaches the device.</summary>
    private bool HeartbeatIsStale =>
        _file is not null && _persistenceBroken is null &&
        DateTime.UtcNow.Ticks - Volatile.Read(ref _heartbeatTicks) > _options.Lease.Ticks / 2;

    /// <summary>
    /// Renews a stale heartbeat before a write goes on (the first write after an idle spell, or when a
    /// loaded machine starved the timer), so the write cannot look foreign after an unclean stop. A failed
    /// renewal marks persistence broken (the next open starts a new generation), as any header write does.
    /// </summary>
    private Task RenewHeartbeatAsync() => Task.Run(() =>
    {
        lock (_sync)
        {
            if (HeartbeatIsStale)
            {
                PersistHeader(clean: false);
            }
        }
    });

    private void StartHeartbeat()
    {
        _heartbeatStop = new CancellationTokenSource();
        var token = _heartbeatStop.Token;
        _heartbeat = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(_options.Heartbeat);
            try
            {
                while (await timer.WaitForNextTickAsync(token).ConfigureAwait(false))
                {
                    if (Interlocked.Exchange(ref _writesSinceHeartbeat, false))
                    {
                        lock (_sync)
                        {
                            PersistHeader(clean: false);
                        }
                    }
                }
            }
            catch (OperationCanceledException)
            {
                // Stopped by close or dispose.
            }
        }, CancellationToken.None);
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

    /// <summary>Group commits made durable so far (each one fdatasync of the sidecar).</summary>
    internal long Commits => Interlocked.Read(ref _commits);

    /// <summary>Why persistence stopped, if it did (the map in memory is still right; the sidecar is not).</summary>
    public string? PersistenceProblem => _persistenceBroken;
}
