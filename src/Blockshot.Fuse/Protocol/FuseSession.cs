using Blockshot.Core.Buffers;
using Blockshot.Fuse.Native;

namespace Blockshot.Fuse.Protocol;

/// <summary>
/// Serves one FUSE connection: reader threads take requests from the device descriptor, dispatch them
/// through <see cref="OpcodeTable"/> to a <see cref="RawFileSystem"/>, and write each reply with one
/// <c>write</c>. A request whose handler completes synchronously is answered on the reader thread and
/// its buffer reused for the next read; one that does not keeps its buffer, is answered when it
/// completes (replies may go out of order, as the protocol allows), and the reader rents a fresh buffer.
/// The session does not own the descriptor: the mount does, and closes it only after <see cref="Completion"/>.
/// Parts: readers (<c>FuseSession.Readers.cs</c>), dispatch and replies (<c>FuseSession.Dispatch.cs</c>),
/// and the requests the session answers itself (<c>FuseSession.Requests.cs</c>).
/// </summary>
internal sealed partial class FuseSession : IDisposable
{
    /// <summary>The protocol major version spoken.</summary>
    public const uint KernelMajor = 7;

    /// <summary>The highest protocol minor version whose structures this code knows.</summary>
    public const uint SupportedMinor = 40;

    /// <summary>Bytes a request buffer holds beyond max_write: the headers, with room to spare.</summary>
    public const int HeaderRoom = 4096;

    private readonly int _fd;

    // The stop event; closed once the session is disposed and nothing runs any more (-1 after).
    // Guarded by _stopLock.
    private int _stopFd;
    private readonly object _stopLock = new();
    private readonly BufferPool _pool;
    private readonly int _bufferSize;
    private readonly Thread[] _readers;
    private readonly long[] _counts = new long[OpcodeTable.Limit + 1];
    private readonly TaskCompletionSource _initialized = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Readers still running plus requests still in flight; the session completes when it reaches zero.
    private int _active;
    private int _inflight;
    private volatile bool _stopping;
    private int _end;
    private Exception? _fault;
    private Exception? _replyFault;
    private long _errorReplies;
    private long _lostReplies;
    private long _interrupts;
    private int _disposed;

    /// <summary>Creates a session over an open /dev/fuse descriptor; call <see cref="Start"/> to serve.</summary>
    public FuseSession(int fd, RawFileSystem fileSystem, int maxWrite, int readers, BufferPool pool)
    {
        ArgumentNullException.ThrowIfNull(fileSystem);
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxWrite, 4096);
        ArgumentOutOfRangeException.ThrowIfLessThan(readers, 1);
        _fd = fd;
        FileSystem = fileSystem;
        MaxWrite = maxWrite;
        _pool = pool;
        _bufferSize = maxWrite + HeaderRoom;
        _readers = new Thread[readers];
        _stopFd = Libc.EventFd(0, Libc.EfdCloExec | Libc.EfdNonBlock);
        if (_stopFd < 0)
        {
            throw SystemCallException.FromLastError("eventfd");
        }
        // Readers wait on the device and a stop event, so a stop wakes them even while the mount lives on.
        var flags = Libc.Fcntl(fd, Libc.FGetFl, 0);
        if (flags < 0 || Libc.Fcntl(fd, Libc.FSetFl, flags | Libc.ONonBlock) < 0)
        {
            var e = SystemCallException.FromLastError("fcntl(/dev/fuse, O_NONBLOCK)");
            Libc.CloseQuietly(_stopFd);
            throw e;
        }
    }

    /// <summary>The filesystem logic requests are dispatched to.</summary>
    public RawFileSystem FileSystem { get; }

    /// <summary>The largest WRITE payload the request buffers hold.</summary>
    public int MaxWrite { get; }

    /// <summary>Completes when INIT has been answered.</summary>
    public Task Initialized => _initialized.Task;

    /// <summary>Completes when every reader has stopped and every request in flight has been answered.</summary>
    public Task Completion => _completion.Task;

    /// <summary>The INIT request the kernel sent (valid once <see cref="Initialized"/> completes).</summary>
    public FuseInitIn KernelInit { get; private set; }

    /// <summary>The INIT reply sent (valid once <see cref="Initialized"/> completes).</summary>
    public FuseInitOut Negotiated { get; private set; }

    /// <summary>Why the session ended (None while it runs).</summary>
    public FuseSessionEnd End => (FuseSessionEnd)Volatile.Read(ref _end);

    /// <summary>The failure that ended the session, if it ended by failing.</summary>
    public Exception? Fault => Volatile.Read(ref _fault);

    /// <summary>The last reply the kernel refused (other than for a request it had abandoned), or null.</summary>
    public Exception? ReplyFault => Volatile.Read(ref _replyFault);

    /// <summary>Requests now being served asynchronously.</summary>
    public int InFlight => Volatile.Read(ref _inflight);

    /// <summary>Replies carrying an error.</summary>
    public long ErrorReplies => Volatile.Read(ref _errorReplies);

    /// <summary>Replies the kernel did not take (the request was abandoned, the connection closed, or the reply refused).</summary>
    public long LostReplies => Volatile.Read(ref _lostReplies);

    /// <summary>INTERRUPT requests received.</summary>
    public long Interrupts => Volatile.Read(ref _interrupts);

    /// <summary>Requests received with <paramref name="opcode"/>.</summary>
    public long Count(FuseOpcode opcode) => Volatile.Read(ref _counts[Slot(opcode)]);

    /// <summary>Requests received in total.</summary>
    public long TotalRequests
    {
        get
        {
            long total = 0;
            for (var i = 0; i < _counts.Length; i++)
            {
                total += Volatile.Read(ref _counts[i]);
            }
            return total;
        }
    }

    /// <summary>Starts the reader threads.</summary>
    public void Start()
    {
        _active = _readers.Length;
        for (var i = 0; i < _readers.Length; i++)
        {
            _readers[i] = new Thread(ReaderLoop) { IsBackground = true, Name = $"fuse-reader-{i}" };
            _readers[i].Start();
        }
    }

    /// <summary>Records that the owner is shutting the session down, before it unmounts (so the end reads Stopped).</summary>
    public void ExpectEnd() => Interlocked.CompareExchange(ref _end, (int)FuseSessionEnd.Stopped, (int)FuseSessionEnd.None);

    /// <summary>Asks the readers to stop; requests in flight are still answered. Await <see cref="Completion"/>.</summary>
    public void Stop() => RequestStop(FuseSessionEnd.Stopped);

    /// <summary>
    /// Tells the kernel to drop cached attributes of node <paramref name="ino"/> (and cached data in the
    /// range, unless <paramref name="offset"/> is negative). Returns false if the kernel did not take it.
    /// </summary>
    public unsafe bool NotifyInvalidateInode(ulong ino, long offset, long length)
    {
        const int Length = FuseOutHeader.WireSize + FuseNotifyInvalInodeOut.WireSize;
        Span<byte> message = stackalloc byte[Length];
        new FuseOutHeader(Length, (int)FuseNotifyCode.InvalInode, 0).Write(message);
        new FuseNotifyInvalInodeOut(ino, offset, length).Write(message[FuseOutHeader.WireSize..]);
        fixed (byte* p = message)
        {
            return Libc.Write(_fd, p, Length) == Length;
        }
    }

    /// <summary>Stops the readers and waits for them; the stop event is released once nothing runs.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        Stop();
        foreach (var reader in _readers)
        {
            reader?.Join();
        }
        ReleaseStopEvent();
    }

    private unsafe void RequestStop(FuseSessionEnd reason)
    {
        Interlocked.CompareExchange(ref _end, (int)reason, (int)FuseSessionEnd.None);
        _stopping = true;
        lock (_stopLock)
        {
            if (_stopFd >= 0)
            {
                ulong one = 1;
                _ = Libc.Write(_stopFd, (byte*)&one, sizeof(ulong));
            }
        }
    }

    // Lock: _stopLock guards _stopFd, so no stop is signalled on a descriptor number already reused.
    private void ReleaseStopEvent()
    {
        lock (_stopLock)
        {
            if (Volatile.Read(ref _disposed) != 0 && Volatile.Read(ref _active) == 0 && _stopFd >= 0)
            {
                Libc.CloseQuietly(_stopFd);
                _stopFd = -1;
            }
        }
    }

    private void Fail(Exception e)
    {
        Interlocked.CompareExchange(ref _fault, e, null);
        RequestStop(FuseSessionEnd.Failed);
    }

    private void Leave()
    {
        if (Interlocked.Decrement(ref _active) == 0)
        {
            _initialized.TrySetException(new InvalidOperationException("the FUSE session ended before INIT was answered", Fault));
            ReleaseStopEvent();
            _completion.TrySetResult();
        }
    }

    private static int Slot(FuseOpcode opcode) => (uint)opcode < OpcodeTable.Limit ? (int)opcode : OpcodeTable.Limit;
}
