using System.Collections.Concurrent;
using System.Threading.Tasks.Sources;
using Blockshot.Core.Extents;
using Blockshot.Core.Threading;
using Microsoft.Win32.SafeHandles;

namespace Blockshot.Drivers.Raw;

/// <summary>
/// Runs one blocking system call (pread, pwrite, fallocate, fdatasync, ftruncate, an lseek extent walk)
/// on one of the driver's <see cref="BlockingIoThreads"/>, or at once on a thread that may block, and
/// completes a <see cref="ValueTask{TResult}"/> with its result, or -errno on failure, as the kernel
/// reports it. Operations are pooled, so a call allocates nothing; the caller
/// must await the returned task exactly once.
/// </summary>
internal sealed unsafe class SyscallOp : BlockingIoWork, IValueTaskSource<long>
{
    private const int MaxPooled = 64;
    private static readonly ConcurrentQueue<SyscallOp> Pool = new();
    private static int _pooled;

    private ManualResetValueTaskSourceCore<long> _core;
    private Kind _kind;
    private SafeFileHandle? _handle;
    private long _offset;
    private long _length;
    private int _mode;
    private void* _pointer;
    private ExtentList? _extents;
    private SafeFileHandle? _source;
    private long _sourceOffset;

    private enum Kind
    {
        Read,
        Write,
        Fallocate,
        DataSync,
        Truncate,
        WriteDsync,
        Extents,
        Ioctl,
        CopyRange,
    }

    /// <summary>fallocate(fd, mode, offset, length).</summary>
    public static ValueTask<long> Fallocate(SafeFileHandle handle, int mode, long offset, long length) =>
        Rent(Kind.Fallocate, handle, offset, length, mode).Start();

    /// <summary>fdatasync(fd).</summary>
    public static ValueTask<long> DataSync(SafeFileHandle handle) => Rent(Kind.DataSync, handle, 0, 0, 0).Start();

    /// <summary>ftruncate(fd, length).</summary>
    public static ValueTask<long> Truncate(SafeFileHandle handle, long length) => Rent(Kind.Truncate, handle, 0, length, 0).Start();

    /// <summary>
    /// pread(fd, pointer, length, offset), once; the memory must stay pinned until the task completes.
    /// Returns the bytes read (as pread: fewer than asked, or none, at the end of the file), or -errno.
    /// </summary>
    public static ValueTask<long> Read(SafeFileHandle handle, void* pointer, int length, long offset) =>
        WithPointer(Rent(Kind.Read, handle, offset, length, 0), pointer);

    /// <summary>
    /// pwrite(fd, pointer, length, offset), repeated until every byte is written; the memory must stay
    /// pinned until the task completes. Returns bytes written, or -errno.
    /// </summary>
    public static ValueTask<long> Write(SafeFileHandle handle, void* pointer, int length, long offset) =>
        WithPointer(Rent(Kind.Write, handle, offset, length, 0), pointer);

    /// <summary>As <see cref="Write"/>, with RWF_DSYNC: the data is durable when the task completes.</summary>
    public static ValueTask<long> WriteDsync(SafeFileHandle handle, void* pointer, int length, long offset) =>
        WithPointer(Rent(Kind.WriteDsync, handle, offset, length, 0), pointer);

    /// <summary>
    /// copy_file_range from <paramref name="source"/> at <paramref name="sourceOffset"/> to the handle at
    /// <paramref name="offset"/>, repeated until <paramref name="length"/> bytes are copied, the source
    /// ends, or the kernel fails. Returns the bytes copied when any were (the caller asks again for the
    /// rest, and then sees the error), else -errno; 0 at the end of the source.
    /// </summary>
    public static ValueTask<long> CopyRange(SafeFileHandle source, long sourceOffset, SafeFileHandle target, long offset, long length)
    {
        var op = Rent(Kind.CopyRange, target, offset, length, 0);
        op._source = source;
        op._sourceOffset = sourceOffset;
        return op.Start();
    }

    private static ValueTask<long> WithPointer(SyscallOp op, void* pointer)
    {
        op._pointer = pointer;
        return op.Start();
    }

    /// <summary>A block-device ioctl taking a <c>uint64_t[2]</c> range (BLKDISCARD, BLKZEROOUT).</summary>
    public static ValueTask<long> RangeIoctl(SafeFileHandle handle, nuint request, long offset, long length) =>
        Rent(Kind.Ioctl, handle, offset, length, (int)request).Start();

    /// <summary>
    /// Walks <c>[offset, offset + length)</c> with lseek(SEEK_DATA/SEEK_HOLE), appending data runs and
    /// zero holes to <paramref name="extents"/>; ENXIO means a hole to the end of the file.
    /// </summary>
    public static ValueTask<long> Extents(SafeFileHandle handle, long offset, long length, ExtentList extents)
    {
        var op = Rent(Kind.Extents, handle, offset, length, 0);
        op._extents = extents;
        return op.Start();
    }

    private static SyscallOp Rent(Kind kind, SafeFileHandle handle, long offset, long length, int mode)
    {
        SyscallOp op;
        if (Pool.TryDequeue(out var pooled))
        {
            Interlocked.Decrement(ref _pooled);
            op = pooled;
        }
        else
        {
            op = new SyscallOp();
        }
        op._kind = kind;
        op._handle = handle;
        op._offset = offset;
        op._length = length;
        op._mode = mode;
        return op;
    }

    private ValueTask<long> Start()
    {
        if (BlockingPolicy.MayBlockHere)
        {
            // A thread that may block (a FUSE reader, a blocking-I/O thread running a request's next
            // step): the call runs here, and handing it on would only add a wake-up.
            try
            {
                return new ValueTask<long>(Run());
            }
            finally
            {
                Recycle();
            }
        }
        var token = _core.Version;
        BlockingIoThreads.Queue(this);
        return new ValueTask<long>(this, token);
    }

    /// <inheritdoc/>
    public override void Execute()
    {
        long result;
        try
        {
            result = Run();
        }
        catch (ObjectDisposedException e)
        {
            _core.SetException(e);
            return;
        }
        _core.SetResult(result);
    }

    private long Run()
    {
        var handle = _handle!;
        while (true)
        {
            var r = _kind switch
            {
                Kind.Fallocate => Check(Libc.FAllocate(handle, _mode, _offset, _length)),
                Kind.DataSync => Check(Libc.FDataSync(handle)),
                Kind.Truncate => Check(Libc.FTruncate(handle, _length)),
                Kind.Read => ReadOnce(handle),
                Kind.Write => WriteAll(handle, 0),
                Kind.WriteDsync => WriteAll(handle, Libc.RwfDsync),
                Kind.Extents => WalkExtents(handle),
                Kind.CopyRange => CopyAll(handle),
                _ => Check(RangeIoctl(handle)),
            };
            if (r != -Libc.EINTR)
            {
                return r;
            }
        }
    }

    private long ReadOnce(SafeFileHandle handle)
    {
        var vector = new Libc.IoVector { Base = _pointer, Length = (nuint)_length };
        var n = (long)Libc.PReadV2(handle, &vector, 1, _offset, 0);
        return n < 0 ? -Libc.Errno : n; // -EINTR is retried by Run
    }

    private long WriteAll(SafeFileHandle handle, int flags)
    {
        var p = (byte*)_pointer;
        var remaining = _length;
        var offset = _offset;
        while (remaining > 0)
        {
            var vector = new Libc.IoVector { Base = p, Length = (nuint)remaining };
            var n = (long)Libc.PWriteV2(handle, &vector, 1, offset, flags);
            if (n < 0)
            {
                var errno = Libc.Errno;
                if (errno == Libc.EINTR)
                {
                    continue;
                }
                return -errno;
            }
            if (n == 0)
            {
                return -Libc.EIO;
            }
            p += n;
            offset += n;
            remaining -= n;
        }
        return _length;
    }

    private long CopyAll(SafeFileHandle target)
    {
        var sourceOffset = _sourceOffset;
        var offset = _offset;
        long copied = 0;
        while (copied < _length)
        {
            var n = (long)Libc.CopyFileRange(_source!, &sourceOffset, target, &offset, (nuint)(_length - copied), 0);
            if (n < 0)
            {
                var errno = Libc.Errno;
                if (errno == Libc.EINTR)
                {
                    continue;
                }
                return copied > 0 ? copied : -errno;
            }
            if (n == 0)
            {
                break; // the source ended
            }
            copied += n;
        }
        return copied;
    }

    private long RangeIoctl(SafeFileHandle handle)
    {
        var range = stackalloc ulong[2];
        range[0] = (ulong)_offset;
        range[1] = (ulong)_length;
        return Libc.Ioctl(handle, (nuint)(uint)_mode, range);
    }

    private long WalkExtents(SafeFileHandle handle)
    {
        var extents = _extents!;
        var pos = _offset;
        var end = _offset + _length;
        while (pos < end && !extents.IsFull)
        {
            var data = Libc.LSeek(handle, pos, Libc.SeekData);
            if (data < 0)
            {
                var errno = Libc.Errno;
                if (errno != Libc.ENXIO)
                {
                    return -errno;
                }
                extents.AddUntil(end, AllocationFlags.HoleZero);
                break;
            }
            if (data > pos)
            {
                var holeEnd = Math.Min(data, end);
                extents.AddUntil(holeEnd, AllocationFlags.HoleZero);
                pos = holeEnd;
                continue;
            }
            var hole = Libc.LSeek(handle, pos, Libc.SeekHole);
            if (hole < 0)
            {
                var errno = Libc.Errno;
                if (errno != Libc.ENXIO)
                {
                    return -errno;
                }
                hole = end;
            }
            var dataEnd = Math.Min(Math.Max(hole, pos + 1), end);
            extents.AddUntil(dataEnd, AllocationFlags.Data);
            pos = dataEnd;
        }
        return 0;
    }

    /// <inheritdoc/>
    public long GetResult(short token)
    {
        try
        {
            return _core.GetResult(token);
        }
        finally
        {
            _core.Reset();
            Recycle();
        }
    }

    private void Recycle()
    {
        _handle = null;
        _pointer = null;
        _extents = null;
        _source = null;
        if (Interlocked.Increment(ref _pooled) <= MaxPooled)
        {
            Pool.Enqueue(this);
        }
        else
        {
            Interlocked.Decrement(ref _pooled);
        }
    }

    /// <inheritdoc/>
    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    /// <inheritdoc/>
    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    private static long Check(long result) => result < 0 ? -Libc.Errno : result;
}
