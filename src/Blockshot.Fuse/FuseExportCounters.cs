namespace Blockshot.Fuse;

/// <summary>
/// Live counters of a FUSE export, updated with interlocked increments as requests are served. Read
/// them at any time; values only grow (except <see cref="OpenFiles"/>).
/// </summary>
public sealed class FuseExportCounters
{
    private long _reads;
    private long _bytesRead;
    private long _writes;
    private long _bytesWritten;
    private long _flushes;
    private long _trims;
    private long _zeroes;
    private long _seeks;
    private long _resizes;
    private long _errors;
    private int _openFiles;
    private Func<long>? _requests;
    private Func<long>? _interrupts;

    /// <summary>READ requests served.</summary>
    public long Reads => Volatile.Read(ref _reads);

    /// <summary>Bytes returned by READ requests.</summary>
    public long BytesRead => Volatile.Read(ref _bytesRead);

    /// <summary>WRITE requests served.</summary>
    public long Writes => Volatile.Read(ref _writes);

    /// <summary>Bytes written by WRITE requests.</summary>
    public long BytesWritten => Volatile.Read(ref _bytesWritten);

    /// <summary>Flushes passed to the node (FSYNC, and FLUSH after writes).</summary>
    public long Flushes => Volatile.Read(ref _flushes);

    /// <summary>Hole punches served (fallocate PUNCH_HOLE).</summary>
    public long Trims => Volatile.Read(ref _trims);

    /// <summary>Zeroings served (fallocate ZERO_RANGE or WRITE_ZEROES).</summary>
    public long Zeroes => Volatile.Read(ref _zeroes);

    /// <summary>SEEK_DATA and SEEK_HOLE requests served.</summary>
    public long Seeks => Volatile.Read(ref _seeks);

    /// <summary>Size changes made through truncate.</summary>
    public long Resizes => Volatile.Read(ref _resizes);

    /// <summary>Requests that ended with an error from the node or a refusal.</summary>
    public long Errors => Volatile.Read(ref _errors);

    /// <summary>Files now open on the export (the loop device holds one).</summary>
    public int OpenFiles => Volatile.Read(ref _openFiles);

    /// <summary>Every request the session received, of any kind (set by the export).</summary>
    public long Requests => _requests?.Invoke() ?? 0;

    /// <summary>INTERRUPT requests received (they are ignored: block requests finish on their own).</summary>
    public long Interrupts => _interrupts?.Invoke() ?? 0;

    internal void Bind(Func<long> requests, Func<long> interrupts)
    {
        _requests = requests;
        _interrupts = interrupts;
    }

    internal void Read(int bytes)
    {
        Interlocked.Increment(ref _reads);
        Interlocked.Add(ref _bytesRead, bytes);
    }

    internal void Wrote(int bytes)
    {
        Interlocked.Increment(ref _writes);
        Interlocked.Add(ref _bytesWritten, bytes);
    }

    internal void Flushed() => Interlocked.Increment(ref _flushes);

    internal void Trimmed() => Interlocked.Increment(ref _trims);

    internal void Zeroed() => Interlocked.Increment(ref _zeroes);

    internal void Sought() => Interlocked.Increment(ref _seeks);

    internal void Resized() => Interlocked.Increment(ref _resizes);

    internal void Failed() => Interlocked.Increment(ref _errors);

    internal void Opened() => Interlocked.Increment(ref _openFiles);

    internal void Released() => Interlocked.Decrement(ref _openFiles);

    /// <inheritdoc/>
    public override string ToString() =>
        $"requests={Requests} reads={Reads} ({BytesRead} B) writes={Writes} ({BytesWritten} B) flushes={Flushes} " +
        $"trims={Trims} zeroes={Zeroes} seeks={Seeks} resizes={Resizes} errors={Errors} open={OpenFiles} interrupts={Interrupts}";
}
