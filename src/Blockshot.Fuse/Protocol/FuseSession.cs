using System.Runtime.CompilerServices;
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
/// </summary>
internal sealed class FuseSession : IDisposable
{
    /// <summary>The protocol major version spoken.</summary>
    public const uint KernelMajor = 7;

    /// <summary>The highest protocol minor version whose structures this code knows.</summary>
    public const uint SupportedMinor = 40;

    /// <summary>Bytes a request buffer holds beyond max_write: the headers, with room to spare.</summary>
    public const int HeaderRoom = 4096;

    private const int F_GETFL = 3;
    private const int F_SETFL = 4;

    private readonly int _fd;
    private readonly int _stopFd;
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
        // Readers poll the device and a stop event, so a stop wakes them even while the mount lives on.
        var flags = Libc.Fcntl(fd, F_GETFL, 0);
        if (flags < 0 || Libc.Fcntl(fd, F_SETFL, flags | Libc.ONonBlock) < 0)
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

    /// <summary>Stops the readers and releases the stop event once they are gone.</summary>
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
        Libc.CloseQuietly(_stopFd);
    }

    internal ValueTask<int> HandleInit(FuseRequest request)
    {
        var input = FuseInitIn.Read(request.Args);
        if (input.Major < KernelMajor)
        {
            return new(-Errno.EPROTO);
        }
        if (input.Major > KernelMajor)
        {
            // Answer with our major only; the kernel sends INIT again for version 7.
            new FuseInitOut(KernelMajor, SupportedMinor, 0, 0, 0, 0, 0, 0, 0, 0, 0).Write(request.Reply);
            return new(FuseInitOut.WireSize);
        }
        var wanted = FileSystem.Init(input);
        var offered = input.AllFlags;
        var flags = wanted.Flags & offered;
        if (((ulong)flags >> 32) != 0)
        {
            flags |= InitFlags.InitExt;
        }
        var reply = wanted with
        {
            Major = KernelMajor,
            Minor = Math.Min(input.Minor, SupportedMinor),
            MaxReadahead = Math.Min(wanted.MaxReadahead, input.MaxReadahead),
            Flags = flags,
            MaxWrite = Math.Clamp(wanted.MaxWrite, 4096, (uint)MaxWrite),
        };
        reply.Write(request.Reply);
        KernelInit = input;
        Negotiated = reply;
        FileSystem.Initialized(input, reply);
        return new(FuseInitOut.WireSize);
    }

    internal ValueTask<int> HandleDestroy()
    {
        FileSystem.Destroy();
        RequestStop(FuseSessionEnd.Destroyed);
        return new(0);
    }

    internal ValueTask<int> HandleInterrupt(FuseInterruptIn input)
    {
        // Block requests finish quickly; the interrupted request is answered when it completes.
        Interlocked.Increment(ref _interrupts);
        FileSystem.Interrupt(input.Unique);
        return new(0);
    }

    internal ValueTask<int> HandleForget(ulong nodeId, ulong nlookup)
    {
        FileSystem.Forget(nodeId, nlookup);
        return new(0);
    }

    internal ValueTask<int> HandleBatchForget(FuseRequest request)
    {
        var args = request.Args;
        var count = FuseBatchForgetIn.Read(args).Count;
        var items = args[FuseBatchForgetIn.WireSize..];
        for (var i = 0; i < count && (i + 1) * FuseForgetOne.WireSize <= items.Length; i++)
        {
            var one = FuseForgetOne.Read(items[(i * FuseForgetOne.WireSize)..]);
            FileSystem.Forget(one.NodeId, one.NLookup);
        }
        return new(0);
    }

    private void ReaderLoop()
    {
        var buffer = _pool.Rent(_bufferSize);
        var epoll = -1;
        try
        {
            epoll = CreateWaitSet();
            while (true)
            {
                var length = ReadRequest(buffer, epoll);
                if (length < 0)
                {
                    break;
                }
                if (!Dispatch(buffer, length))
                {
                    // The request kept the buffer; it returns it when answered.
                    buffer = _pool.Rent(_bufferSize);
                }
            }
        }
        catch (Exception e)
        {
            Fail(e);
        }
        finally
        {
            buffer.Return();
            Libc.CloseQuietly(epoll);
            Leave();
        }
    }

    // Each reader waits on its own epoll set: the device with EPOLLEXCLUSIVE, so a request wakes one
    // idle reader rather than all of them, and the stop event, which wakes every reader.
    private int CreateWaitSet()
    {
        var epoll = Libc.EpollCreate1(Libc.EpollCloExec);
        if (epoll < 0)
        {
            throw SystemCallException.FromLastError("epoll_create1");
        }
        if (Libc.EpollAdd(epoll, _fd, Libc.EpollIn | Libc.EpollExclusive) != 0 || Libc.EpollAdd(epoll, _stopFd, Libc.EpollIn) != 0)
        {
            var e = SystemCallException.FromLastError("epoll_ctl");
            Libc.CloseQuietly(epoll);
            throw e;
        }
        return epoll;
    }

    // Returns the request length, or -1 when the session ends.
    private unsafe int ReadRequest(PooledBuffer buffer, int epoll)
    {
        var span = buffer.Span;
        while (!_stopping)
        {
            nint n;
            fixed (byte* p = span)
            {
                n = Libc.Read(_fd, p, span.Length);
            }
            if (n > 0)
            {
                return (int)n;
            }
            var errno = n == 0 ? Errno.ENODEV : Libc.Errno;
            switch (errno)
            {
                case Errno.EAGAIN:
                    WaitReadable(epoll);
                    break;
                case Errno.EINTR:
                case Errno.ENOENT: // the request was interrupted before it could be read
                    break;
                case Errno.ENODEV: // unmounted
                case Errno.ECONNABORTED: // aborted through the control filesystem
                    RequestStop(FuseSessionEnd.Unmounted);
                    return -1;
                default:
                    Fail(new SystemCallException("read(/dev/fuse)", errno));
                    return -1;
            }
        }
        return -1;
    }

    private unsafe void WaitReadable(int epoll)
    {
        var events = stackalloc byte[2 * 16];
        if (Libc.EpollWait(epoll, events, 2, -1) < 0 && Libc.Errno != Errno.EINTR)
        {
            Fail(new SystemCallException("epoll_wait(/dev/fuse)", Libc.Errno));
        }
    }

    // Returns false when the request kept the buffer (it is answered later).
    private bool Dispatch(PooledBuffer buffer, int length)
    {
        var span = buffer.Span;
        if (length < FuseInHeader.WireSize)
        {
            Fail(new InvalidDataException($"short FUSE request of {length} bytes"));
            return true;
        }
        var header = FuseInHeader.Read(span);
        Interlocked.Increment(ref _counts[Slot(header.Opcode)]);
        var info = OpcodeTable.Find(header.Opcode);
        if (info is null || info.Handler is null)
        {
            if (info is null || !info.NoReply)
            {
                Reply(buffer, header.Unique, -Errno.ENOSYS);
            }
            return true;
        }
        if (header.Length != length || length - FuseInHeader.WireSize < info.InSize)
        {
            if (!info.NoReply)
            {
                Reply(buffer, header.Unique, -Errno.EINVAL);
            }
            return true;
        }

        var request = new FuseRequest(buffer, length, header);
        ValueTask<int> pending;
        try
        {
            pending = info.Handler(this, request);
        }
        catch (Exception e)
        {
            pending = new(-FileSystem.ToErrno(e));
        }

        if (pending.IsCompleted)
        {
            var result = Result(pending);
            if (!info.NoReply)
            {
                Reply(buffer, header.Unique, result);
            }
            if (header.Opcode == FuseOpcode.Init && result >= 0 && Negotiated.Major == KernelMajor && Negotiated.MaxWrite != 0)
            {
                _initialized.TrySetResult();
            }
            return true;
        }

        Interlocked.Increment(ref _inflight);
        Interlocked.Increment(ref _active);
        // Fire and forget by design: CompleteAsync catches everything and answers the request itself;
        // its pooled builder makes the hand-off allocation-free once warm.
#pragma warning disable CA2012
        _ = CompleteAsync(pending, buffer, header.Unique, info.NoReply);
#pragma warning restore CA2012
        return false;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask CompleteAsync(ValueTask<int> pending, PooledBuffer buffer, ulong unique, bool noReply)
    {
        int result;
        try
        {
            result = await pending.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            result = -FileSystem.ToErrno(e);
        }
        try
        {
            if (!noReply)
            {
                Reply(buffer, unique, result);
            }
        }
        finally
        {
            buffer.Return();
            Interlocked.Decrement(ref _inflight);
            Leave();
        }
    }

    private int Result(ValueTask<int> completed)
    {
        try
        {
            return completed.Result;
        }
        catch (Exception e)
        {
            return -FileSystem.ToErrno(e);
        }
    }

    private unsafe void Reply(PooledBuffer buffer, ulong unique, int result)
    {
        int length;
        if (result < 0)
        {
            length = FuseOutHeader.WireSize;
            Interlocked.Increment(ref _errorReplies);
        }
        else
        {
            length = FuseOutHeader.WireSize + result;
        }
        var span = buffer.Span;
        new FuseOutHeader((uint)length, Math.Min(result, 0), unique).Write(span);
        nint n;
        fixed (byte* p = span)
        {
            n = Libc.Write(_fd, p, length);
        }
        if (n == length)
        {
            return;
        }
        var errno = n < 0 ? Libc.Errno : Errno.EIO;
        Interlocked.Increment(ref _lostReplies);
        switch (errno)
        {
            case Errno.ENOENT: // interrupted and abandoned by the kernel
                break;
            case Errno.ENODEV: // connection gone
            case Errno.ECONNABORTED:
                RequestStop(FuseSessionEnd.Unmounted);
                break;
            default:
                // The kernel refused this reply (a bug here); its caller waits for ever, but the
                // connection and every other request are fine, so serving goes on.
                Volatile.Write(ref _replyFault, new SystemCallException($"write(/dev/fuse) of a {length}-byte reply", errno));
                break;
        }
    }

    private unsafe void RequestStop(FuseSessionEnd reason)
    {
        Interlocked.CompareExchange(ref _end, (int)reason, (int)FuseSessionEnd.None);
        _stopping = true;
        ulong one = 1;
        _ = Libc.Write(_stopFd, (byte*)&one, sizeof(ulong));
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
            _completion.TrySetResult();
        }
    }

    private static int Slot(FuseOpcode opcode) => (uint)opcode < OpcodeTable.Limit ? (int)opcode : OpcodeTable.Limit;
}
