using Blockshot.Core;
using Blockshot.Daemon.Protocol;
using Blockshot.Drivers;

namespace Blockshot.Daemon.Devices;

/// <summary>Opens leaves by format, turning open failures into control errors.</summary>
internal static class LeafOpener
{
    private static readonly byte[] Qcow2Magic = "QFI\xfb"u8.ToArray();

    /// <summary>The formats a device may name.</summary>
    public static readonly string[] Formats = ["raw", "qcow2"];

    /// <summary>Detects the format of <paramref name="path"/> from its first bytes.</summary>
    public static string Probe(string path)
    {
        try
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            Span<byte> head = stackalloc byte[4];
            return RandomAccess.Read(handle, head, 0) == 4 && head.SequenceEqual(Qcow2Magic) ? "qcow2" : "raw";
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new ControlException(ControlErrorCodes.NotFound, $"{path} does not exist", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new ControlException(ControlErrorCodes.PermissionDenied, $"permission denied reading {path}", e);
        }
        catch (IOException)
        {
            // Unreadable here (a directory, say): the driver says exactly why.
            return "raw";
        }
    }

    /// <summary>Opens the leaf <paramref name="spec"/> describes.</summary>
    public static BlockNode Open(LeafSpec spec) => spec.Format switch
    {
        "raw" => OpenRaw(spec),
        "qcow2" => throw new ControlException(ControlErrorCodes.NotAvailable,
            $"{spec.File}: qcow2 images are not available in this build yet (add it with format raw to see the container bytes)"),
        _ => throw new ControlException(ControlErrorCodes.InvalidParams, $"unknown format '{spec.Format}' (expected one of: {string.Join(", ", Formats)})"),
    };

    /// <summary>Maps an open failure to a control error.</summary>
    public static ControlException Translate(ImageOpenException e) => new(e.Reason switch
    {
        ImageOpenError.NotFound => ControlErrorCodes.NotFound,
        ImageOpenError.PermissionDenied => ControlErrorCodes.PermissionDenied,
        ImageOpenError.Locked or ImageOpenError.Busy => ControlErrorCodes.Locked,
        ImageOpenError.NotFileOrDevice => ControlErrorCodes.InvalidParams,
        _ => ControlErrorCodes.IoError,
    }, e.Message, e);

    private static RawFileNode OpenRaw(LeafSpec spec)
    {
        try
        {
            return RawFileNode.Open(spec.File, new RawFileOptions { ReadOnly = spec.ReadOnly, Direct = spec.Direct, Locking = spec.Locking });
        }
        catch (ImageOpenException e)
        {
            throw Translate(e);
        }
    }
}
