using Blockshot.Core;
using Blockshot.Drivers;
using Blockshot.Qcow2;

namespace Blockshot.Cli;

/// <summary>Opens an image or device as a node, detecting its format and turning failures into exit codes.</summary>
internal static class ImageOpener
{
    /// <summary>The formats <c>-f</c> accepts.</summary>
    public static readonly string[] Formats = ["raw", "qcow2"];

    /// <summary>An opened image: its node and the format it was opened as.</summary>
    public sealed record Opened(BlockNode Node, string Format);

    /// <summary>
    /// Opens <paramref name="path"/>; <paramref name="format"/> null means detect it. qcow2 images open
    /// with their backing chain (backing files read-only, each with the read lock).
    /// </summary>
    public static async Task<Opened> OpenAsync(string path, string? format, bool readOnly, bool direct, bool locking, bool openBacking = true)
    {
        var options = new DiskImageOptions
        {
            Format = format ?? Probe(path),
            ReadOnly = readOnly,
            Direct = direct,
            Locking = locking,
            OpenBacking = openBacking,
        };
        try
        {
            var (node, opened) = await DiskImage.OpenAsync(path, options).ConfigureAwait(false);
            return new Opened(node, opened);
        }
        catch (Exception e) when (Translate(path, e) is { } cli)
        {
            throw cli;
        }
    }

    /// <summary>Guesses the format from the first bytes: qcow2 by its magic, raw otherwise.</summary>
    public static string Probe(string path)
    {
        try
        {
            return DiskImage.Probe(path);
        }
        catch (ImageOpenException e) when (e.Reason is ImageOpenError.NotFound or ImageOpenError.PermissionDenied)
        {
            throw Translate(path, e)!;
        }
        catch (IOException)
        {
            // Unreadable here (a directory, say): let the driver say exactly why.
            return "raw";
        }
    }

    /// <summary>The CLI failure for an open failure, or null when <paramref name="e"/> is not one.</summary>
    public static CliException? Translate(string path, Exception e) => e switch
    {
        CliException cli => cli,
        ImageOpenException io => new CliException(io.Message, io.Reason switch
        {
            ImageOpenError.NotFound => ExitCodes.NotFound,
            ImageOpenError.PermissionDenied => ExitCodes.PermissionDenied,
            ImageOpenError.Locked or ImageOpenError.Busy => ExitCodes.Locked,
            ImageOpenError.NotFileOrDevice => ExitCodes.Usage,
            _ => ExitCodes.Failure,
        }, e),
        ArgumentException arg => new CliException($"{path}: {arg.Message}", ExitCodes.Usage, e),
        BlockException block => new CliException(Describe(path, block), ExitCodes.BadImage, e),
        _ => null,
    };

    private static string Describe(string path, BlockException e)
    {
        var text = e.Message.StartsWith("qcow2: ", StringComparison.Ordinal) ? e.Message[7..] : e.Message;
        return e.Error switch
        {
            BlockError.NotSupported => $"{path}: unsupported qcow2 image: {text}",
            BlockError.AccessDenied => $"{path}: {text}",
            _ => $"{path}: not a valid qcow2 image: {text}",
        };
    }
}
