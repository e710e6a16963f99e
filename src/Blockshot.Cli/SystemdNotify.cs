using System.Net.Sockets;
using System.Text;

namespace Blockshot.Cli;

/// <summary>
/// The systemd readiness protocol (sd_notify): when started by a <c>Type=notify</c> unit, tell the
/// service manager we are ready, or stopping, through the datagram socket in <c>$NOTIFY_SOCKET</c>.
/// </summary>
internal static class SystemdNotify
{
    /// <summary>Sends <paramref name="state"/> (e.g. <c>READY=1</c>); does nothing outside systemd.</summary>
    public static void Send(string state)
    {
        var path = Environment.GetEnvironmentVariable("NOTIFY_SOCKET");
        if (string.IsNullOrEmpty(path))
        {
            return;
        }
        // A leading '@' names a socket in the abstract namespace.
        var endpoint = new UnixDomainSocketEndPoint(path[0] == '@' ? "\0" + path[1..] : path);
        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            socket.Connect(endpoint);
            socket.Send(Encoding.UTF8.GetBytes(state));
        }
        catch (SocketException e)
        {
            Console.Error.WriteLine($"blockshot: warning: cannot notify systemd at {path}: {e.Message}");
        }
    }
}
