using System.Runtime.CompilerServices;
using Blockshot.Core.Buffers;
using Blockshot.Fuse.Native;

namespace Blockshot.Fuse.Protocol;

/// <summary>Dispatch through the opcode table, completion of asynchronous requests, and replies.</summary>
internal sealed partial class FuseSession
{
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
            // Marked before the reply goes out, so whoever sees the reply (a test's fake kernel, or a process
            // waiting on the mount) also sees the session initialized; requests the kernel sends before it has
            // read the reply wait in its queue either way.
            if (header.Opcode == FuseOpcode.Init && result >= 0 && Negotiated.Major == KernelMajor && Negotiated.MaxWrite != 0)
            {
                _initialized.TrySetResult();
            }
            if (!info.NoReply)
            {
                Reply(buffer, header.Unique, result);
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
}
