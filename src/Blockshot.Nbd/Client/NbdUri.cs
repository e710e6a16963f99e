namespace Blockshot.Nbd.Client;

/// <summary>
/// An NBD URI as qemu and libnbd write them: <c>nbd+unix:///EXPORT?socket=PATH</c> (a Unix socket) or
/// <c>nbd://HOST[:PORT]/EXPORT</c> (TCP, port 10809 by default). The export name is the path without its
/// leading slash, percent-decoded; empty means the server's default export.
/// </summary>
/// <param name="SocketPath">The Unix socket path, or null for TCP.</param>
/// <param name="Host">The TCP host, or null for a Unix socket.</param>
/// <param name="Port">The TCP port.</param>
/// <param name="Export">The export name.</param>
public sealed record NbdUri(string? SocketPath, string? Host, int Port, string Export)
{
    /// <summary>The NBD port.</summary>
    public const int DefaultPort = 10809;

    /// <summary>True when <paramref name="text"/> starts like an NBD URI (so it is not a file name).</summary>
    public static bool Looks(string text) =>
        text.StartsWith("nbd://", StringComparison.Ordinal) || text.StartsWith("nbd+unix://", StringComparison.Ordinal)
        || text.StartsWith("nbd+tcp://", StringComparison.Ordinal);

    /// <summary>Parses an NBD URI; returns false (with the reason) when it is not one this client can use.</summary>
    public static bool TryParse(string text, out NbdUri? uri, out string? error)
    {
        uri = null;
        error = null;
        if (!Looks(text))
        {
            error = "not an nbd:// or nbd+unix:// URI";
            return false;
        }
        var unix = text.StartsWith("nbd+unix://", StringComparison.Ordinal);
        var rest = text[(text.IndexOf("://", StringComparison.Ordinal) + 3)..];
        var query = "";
        var q = rest.IndexOf('?', StringComparison.Ordinal);
        if (q >= 0)
        {
            query = rest[(q + 1)..];
            rest = rest[..q];
        }
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var authority = slash < 0 ? rest : rest[..slash];
        var export = slash < 0 ? "" : Uri.UnescapeDataString(rest[(slash + 1)..]);
        string? socket = null;
        foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            var key = eq < 0 ? pair : pair[..eq];
            var value = eq < 0 ? "" : Uri.UnescapeDataString(pair[(eq + 1)..]);
            if (key == "socket")
            {
                socket = value;
            }
            else
            {
                error = $"unsupported URI parameter '{key}'";
                return false;
            }
        }
        if (unix)
        {
            if (authority.Length > 0)
            {
                error = "nbd+unix:// takes no host (write nbd+unix:///EXPORT?socket=PATH)";
                return false;
            }
            if (string.IsNullOrEmpty(socket))
            {
                error = "nbd+unix:// needs ?socket=PATH";
                return false;
            }
            uri = new NbdUri(socket, null, 0, export);
            return true;
        }
        if (socket is not null)
        {
            error = "?socket= goes with nbd+unix://";
            return false;
        }
        var host = authority;
        var port = DefaultPort;
        var colon = authority.LastIndexOf(':');
        if (colon >= 0 && !authority.EndsWith(']'))
        {
            if (!int.TryParse(authority[(colon + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out port)
                || port is < 1 or > 65535)
            {
                error = $"bad port in '{authority}'";
                return false;
            }
            host = authority[..colon];
        }
        host = host.Trim('[', ']');
        if (host.Length == 0)
        {
            error = "nbd:// needs a host";
            return false;
        }
        uri = new NbdUri(null, host, port, export);
        return true;
    }

    /// <inheritdoc/>
    public override string ToString() => SocketPath is not null
        ? $"nbd+unix:///{Uri.EscapeDataString(Export)}?socket={SocketPath}"
        : $"nbd://{Host}:{Port}/{Uri.EscapeDataString(Export)}";
}
