using Blockshot.Core.Buffers;
using Blockshot.Fuse.Native;

namespace Blockshot.Fuse.Protocol;

/// <summary>The reader threads: take requests from the device, and wait when there are none.</summary>
internal sealed partial class FuseSession
{
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
}
