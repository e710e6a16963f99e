using System.Net.Sockets;

namespace Blockshot.Nbd;

/// <summary>Listening sockets handed over by systemd socket activation (LISTEN_PID / LISTEN_FDS).</summary>
public static class SystemdSockets
{
    private const int FirstFd = 3;

    /// <summary>
    /// The inherited listening sockets, if this process was socket-activated; empty otherwise. The
    /// environment variables are cleared so child processes do not take the sockets too.
    /// </summary>
    public static IReadOnlyList<Socket> TakeListeners()
    {
        var pid = Environment.GetEnvironmentVariable("LISTEN_PID");
        var fds = Environment.GetEnvironmentVariable("LISTEN_FDS");
        if (pid is null || fds is null || !int.TryParse(pid, out var p) || p != Environment.ProcessId
            || !int.TryParse(fds, out var count) || count <= 0)
        {
            return [];
        }
        Environment.SetEnvironmentVariable("LISTEN_PID", null);
        Environment.SetEnvironmentVariable("LISTEN_FDS", null);
        Environment.SetEnvironmentVariable("LISTEN_FDNAMES", null);
        var sockets = new List<Socket>(count);
        for (var fd = FirstFd; fd < FirstFd + count; fd++)
        {
            sockets.Add(new Socket(new SafeSocketHandle(fd, ownsHandle: true)));
        }
        return sockets;
    }
}
