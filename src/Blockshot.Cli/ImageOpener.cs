using Blockshot.Core;
using Blockshot.Drivers;

namespace Blockshot.Cli;

/// <summary>Opens an image or device as a node, detecting its format and turning failures into exit codes.</summary>
internal static class ImageOpener
{
    private static readonly byte[] Qcow2Magic = "QFI\xfb"u8.ToArray();

    /// <summary>The formats <c>-f</c> accepts.</summary>
    public static readonly string[] Formats = ["raw", "qcow2"];

    /// <summary>An opened image: its node and the format it was opened as.</summary>
    public sealed record Opened(BlockNode Node, string Format);

    /// <summary>Opens <paramref name="path"/>; <paramref name="format"/> null means detect it.</summary>
    public static Opened Open(string path, string? format, bool readOnly, bool direct, bool locking)
    {
        var chosen = format ?? Probe(path);
        switch (chosen)
        {
            case "raw":
                try
                {
                    var node = RawFileNode.Open(path, new RawFileOptions { ReadOnly = readOnly, Direct = direct, Locking = locking });
                    return new Opened(node, "raw");
                }
                catch (ImageOpenException e)
                {
                    throw Translate(e);
                }
            case "qcow2":
                throw new CliException($"{path}: qcow2 images are not supported by this build yet (serve it as raw with -f raw to see the container bytes)", ExitCodes.BadImage);
            default:
                throw new CliException($"unknown format '{chosen}' (expected one of: {string.Join(", ", Formats)})", ExitCodes.Usage);
        }
    }

    /// <summary>Guesses the format from the first bytes: qcow2 by its magic, raw otherwise.</summary>
    public static string Probe(string path)
    {
        try
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            Span<byte> head = stackalloc byte[4];
            return RandomAccess.Read(handle, head, 0) == 4 && head.SequenceEqual(Qcow2Magic) ? "qcow2" : "raw";
        }
        catch (FileNotFoundException e)
        {
            throw new CliException($"{path}: no such file or device", ExitCodes.NotFound, e);
        }
        catch (DirectoryNotFoundException e)
        {
            throw new CliException($"{path}: no such file or device", ExitCodes.NotFound, e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new CliException($"{path}: permission denied", ExitCodes.PermissionDenied, e);
        }
        catch (IOException)
        {
            // Unreadable here (a directory, say): let the driver say exactly why.
            return "raw";
        }
    }

    private static CliException Translate(ImageOpenException e) => new(e.Message, e.Reason switch
    {
        ImageOpenError.NotFound => ExitCodes.NotFound,
        ImageOpenError.PermissionDenied => ExitCodes.PermissionDenied,
        ImageOpenError.Locked or ImageOpenError.Busy => ExitCodes.Locked,
        ImageOpenError.NotFileOrDevice => ExitCodes.Usage,
        _ => ExitCodes.Failure,
    }, e);
}
