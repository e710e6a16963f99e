using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Blockshot.Nbd.Internal;

/// <summary>
/// sendfile(2) from a file's page cache to a connection's socket: on Linux the pages go to the socket by
/// reference, so a large read reply costs the server no copy at all.
/// </summary>
internal static unsafe partial class FileSend
{
    private const int EINTR = 4;
    private const int EAGAIN = 11;
    private const int EPIPE = 32;
    private const int ECONNRESET = 104;
    private const int ENOTCONN = 107;
    private const short PollOut = 0x4;

    /// <summary>How a <see cref="Send"/> ended.</summary>
    public enum Outcome
    {
        /// <summary>Every byte was sent.</summary>
        Sent,

        /// <summary>The file ended first; <c>sent</c> says how much went.</summary>
        FileEnded,

        /// <summary>A system call failed; <c>errno</c> says why.</summary>
        Failed,
    }

    /// <summary>
    /// Sends <paramref name="length"/> bytes of <paramref name="file"/> from <paramref name="offset"/> on
    /// <paramref name="socket"/>, waiting for room as a blocking send would.
    /// </summary>
    public static Outcome Send(Socket socket, SafeFileHandle file, long offset, long length, out long sent, out int errno)
    {
        sent = 0;
        errno = 0;
        var handle = socket.SafeHandle;
        var added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            var fd = handle.DangerousGetHandle();
            var position = offset;
            while (sent < length)
            {
                var n = SendFile(fd, file, &position, (nuint)Math.Min(length - sent, 1L << 30));
                if (n > 0)
                {
                    sent += n;
                    continue;
                }
                if (n == 0)
                {
                    return Outcome.FileEnded;
                }
                errno = Marshal.GetLastPInvokeError();
                if (errno == EINTR)
                {
                    continue;
                }
                if (errno == EAGAIN)
                {
                    // The socket is in non-blocking mode: wait for room, as the runtime's blocking send does.
                    var poll = new PollFd { Fd = (int)fd, Events = PollOut };
                    if (Poll(&poll, 1, -1) < 0 && Marshal.GetLastPInvokeError() != EINTR)
                    {
                        errno = Marshal.GetLastPInvokeError();
                        return Outcome.Failed;
                    }
                    continue;
                }
                return Outcome.Failed;
            }
            return Outcome.Sent;
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary>True for the errors of a socket whose peer has gone.</summary>
    public static bool ClientGone(int errno) => errno is EPIPE or ECONNRESET or ENOTCONN;

    [LibraryImport("libc", EntryPoint = "sendfile", SetLastError = true)]
    private static partial nint SendFile(nint outFd, SafeFileHandle inFd, long* offset, nuint count);

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static partial int Poll(PollFd* fds, nuint count, int timeout);

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }
}
