using Blockshot.Core;
using Blockshot.Nbd.Client;

namespace Blockshot.Cli.Commands.Image;

/// <summary>Opens what convert reads from and writes to: an image file, or an NBD export named by a URI.</summary>
internal static class Endpoints
{
    /// <summary>True when <paramref name="spec"/> names an NBD export rather than a file.</summary>
    public static bool IsNbd(string spec) => NbdUri.Looks(spec);

    /// <summary>Connects to an NBD export; the format, if given, must be raw (the export's bytes are the disk).</summary>
    public static async Task<NbdClientNode> ConnectAsync(string spec, string? format)
    {
        if (format is not (null or "raw"))
        {
            throw new CliException($"{spec}: an NBD export is read as raw; -f/-O {format} is not possible for it", ExitCodes.Usage);
        }
        if (!NbdUri.TryParse(spec, out var uri, out var error))
        {
            throw new CliException($"{spec}: {error}", ExitCodes.Usage);
        }
        try
        {
            return await NbdClientNode.ConnectAsync(uri!).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
        {
            var code = e is System.Net.Sockets.SocketException { SocketErrorCode: System.Net.Sockets.SocketError.AddressNotAvailable or System.Net.Sockets.SocketError.ConnectionRefused }
                ? ExitCodes.NotFound : ExitCodes.Failure;
            throw new CliException($"{spec}: cannot connect: {e.Message}", code, e);
        }
    }

    /// <summary>Opens a source read-only: a file (with its backing chain) or an NBD export.</summary>
    public static async Task<(BlockNode Node, string Format)> OpenSourceAsync(string spec, string? format, bool locking)
    {
        if (IsNbd(spec))
        {
            return (await ConnectAsync(spec, format).ConfigureAwait(false), "raw");
        }
        var opened = await ImageOpener.OpenAsync(spec, format, readOnly: true, direct: false, locking).ConfigureAwait(false);
        return (opened.Node, opened.Format);
    }
}
