using System.Runtime.InteropServices;
using Blockshot.Core.Platform;
using Microsoft.Win32.SafeHandles;

namespace Blockshot.Snapshots.Persistence;

/// <summary>
/// The append-only log that makes a device's snapshots survive a restart: snapshot creations and
/// removals, failures, and every table entry. A copy becomes durable in this order: the chunk's data
/// in the store, a store flush, the entry records, a log flush; only then is the origin write issued.
/// Concurrent copies share one commit. Replay stops at the first torn or stale record.
/// </summary>
internal sealed partial class ExceptionLog : IDisposable
{
    private const int RecordsStart = 4096;
    private readonly SafeFileHandle _handle;
    private readonly Func<ValueTask> _flushStore;

    // Guarded by _sync.
    private readonly object _sync = new();
    private List<byte[]> _pending = [];
    private List<byte[]> _spare = [];
    private TaskCompletionSource? _batch;
    private bool _committing;
    private ulong _nextSequence;
    private long _tail;
    private uint _headerSequence;
    private string? _broken;

    private ExceptionLog(string path, SafeFileHandle handle, Func<ValueTask> flushStore)
    {
        Path = path;
        _handle = handle;
        _flushStore = flushStore;
    }

    public string Path { get; }

    /// <summary>Why the log stopped working, if it did.</summary>
    public string? Problem => _broken;

    /// <summary>Opens (or creates) the log and reads what it holds.</summary>
    public static (ExceptionLog Log, LogHeader? Header, List<LogRecord> Records) Open(string path, Func<ValueTask> flushStore)
    {
        var handle = File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read);
        var log = new ExceptionLog(path, handle, flushStore);
        try
        {
            var header = log.ReadHeader();
            var records = log.Replay();
            return (log, header, records);
        }
        catch
        {
            log.Dispose();
            throw;
        }
    }

    /// <summary>Writes a header (into the copy its sequence picks) and makes it durable.</summary>
    public void WriteHeader(LogHeader header)
    {
        lock (_sync)
        {
            header = header with { Sequence = ++_headerSequence };
            Span<byte> slot = stackalloc byte[LogHeader.SlotSize];
            header.WriteTo(slot);
            RandomAccess.Write(_handle, slot, (header.Sequence % 2) * LogHeader.SlotSize);
            Sync();
        }
    }

    /// <summary>Appends records; completes once they, and every store write before them, are durable.</summary>
    public Task AppendAsync(params ReadOnlySpan<LogRecord> records)
    {
        TaskCompletionSource batch;
        var start = false;
        lock (_sync)
        {
            if (_broken is { } problem)
            {
                return Task.FromException(new IOException($"the snapshot log {Path} failed earlier: {problem}"));
            }
            foreach (var r in records)
            {
                _pending.Add(r.Serialize(_nextSequence++));
            }
            batch = _batch ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            if (!_committing)
            {
                _committing = start = true;
            }
        }
        if (start)
        {
            _ = Task.Run(CommitLoopAsync);
        }
        return batch.Task;
    }

    public void Dispose() => _handle.Dispose();

    private async Task CommitLoopAsync()
    {
        while (true)
        {
            List<byte[]> records;
            TaskCompletionSource batch;
            long at;
            lock (_sync)
            {
                if (_pending.Count == 0)
                {
                    _committing = false;
                    return;
                }
                records = _pending;
                _pending = _spare;
                _spare = records;
                batch = _batch!;
                _batch = null;
                at = _tail;
                foreach (var r in records)
                {
                    _tail += r.Length;
                }
            }
            try
            {
                await _flushStore().ConfigureAwait(false);
                var bytes = new byte[records.Sum(r => r.Length)];
                var offset = 0;
                foreach (var r in records)
                {
                    r.CopyTo(bytes, offset);
                    offset += r.Length;
                }
                RandomAccess.Write(_handle, bytes, at);
                Sync();
                records.Clear();
                batch.SetResult();
            }
            catch (Exception e) when (e is IOException or Core.BlockException)
            {
                lock (_sync)
                {
                    _broken ??= e.Message;
                }
                records.Clear();
                batch.SetException(new IOException($"could not record snapshot changes durably in {Path}: {e.Message}", e));
            }
        }
    }

    private LogHeader? ReadHeader()
    {
        Span<byte> a = stackalloc byte[LogHeader.SlotSize];
        Span<byte> b = stackalloc byte[LogHeader.SlotSize];
        var first = RandomAccess.Read(_handle, a, 0) == LogHeader.SlotSize ? LogHeader.ReadFrom(a) : null;
        var second = RandomAccess.Read(_handle, b, LogHeader.SlotSize) == LogHeader.SlotSize ? LogHeader.ReadFrom(b) : null;
        var newest = (first, second) switch
        {
            (null, _) => second,
            (_, null) => first,
            _ => first.Sequence >= second.Sequence ? first : second,
        };
        _headerSequence = newest?.Sequence ?? 0;
        return newest;
    }

    private List<LogRecord> Replay()
    {
        var length = RandomAccess.GetLength(_handle);
        var records = new List<LogRecord>();
        _tail = RecordsStart;
        if (length > RecordsStart)
        {
            var bytes = new byte[length - RecordsStart];
            var n = RandomAccess.Read(_handle, bytes, RecordsStart);
            var span = bytes.AsSpan(0, n);
            while (LogRecord.TryParse(span, _nextSequence, out var record, out var size))
            {
                records.Add(record);
                _nextSequence++;
                _tail += size;
                span = span[size..];
            }
        }
        // Whatever follows the last good record is a torn append; new records overwrite it.
        RandomAccess.SetLength(_handle, _tail);
        return records;
    }

    private void Sync()
    {
        if (fdatasync(_handle) != 0)
        {
            throw new IOException($"fdatasync of {Path} failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fdatasync(SafeFileHandle fd);

    /// <summary>A header describing <paramref name="identity"/> now.</summary>
    public static LogHeader HeaderFor(int chunkSize, long originSize, bool clean, DeviceIdentity identity) => new()
    {
        Sequence = 0,
        ChunkSize = chunkSize,
        OriginSize = originSize,
        Clean = clean,
        OriginDevice = identity.Device,
        OriginInode = identity.Inode,
        OriginModifiedTicks = identity.ModifiedTicks,
        HeartbeatTicks = DateTime.UtcNow.Ticks,
    };
}
