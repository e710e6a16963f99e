using System.Net.Sockets;

namespace Blockshot.Nbd.Client;

// Connecting by URI or over TCP, and handing the negotiated socket to a pipelined node.
public sealed partial class NbdClient
{
    /// <summary>Connects to a TCP server and attaches to <paramref name="export"/>.</summary>
    public static async Task<NbdClient> ConnectTcpAsync(string host, int port, string export, CancellationToken cancellationToken = default)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(host, port, cancellationToken).ConfigureAwait(false);
            var client = new NbdClient(socket, export);
            await client.HandshakeAsync(cancellationToken).ConfigureAwait(false);
            return client;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Connects to the server and export an NBD URI names.</summary>
    public static Task<NbdClient> ConnectAsync(NbdUri uri, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(uri);
        return uri.SocketPath is not null
            ? ConnectUnixAsync(uri.SocketPath, uri.Export, cancellationToken)
            : ConnectTcpAsync(uri.Host!, uri.Port, uri.Export, cancellationToken);
    }

    /// <summary>Takes the negotiated socket away from this client, which must not be used afterwards.</summary>
    internal Socket Detach() => _socket;
}
