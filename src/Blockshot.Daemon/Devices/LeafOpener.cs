using Blockshot.Core;
using Blockshot.Daemon.Protocol;
using Blockshot.Drivers;
using Blockshot.Qcow2;

namespace Blockshot.Daemon.Devices;

/// <summary>Opens leaves by format, turning open failures into control errors.</summary>
internal static class LeafOpener
{
    /// <summary>The formats a device may name.</summary>
    public static readonly string[] Formats = ["raw", "qcow2"];

    /// <summary>Detects the format of <paramref name="path"/> from its first bytes.</summary>
    public static string Probe(string path)
    {
        try
        {
            return DiskImage.Probe(path);
        }
        catch (ImageOpenException e) when (e.Reason is ImageOpenError.NotFound or ImageOpenError.PermissionDenied)
        {
            throw Translate(e);
        }
        catch (IOException)
        {
            // Unreadable here (a directory, say): opening it as raw says exactly why.
            return "raw";
        }
    }

    /// <summary>Opens the leaf <paramref name="spec"/> describes: a raw file or device, or a qcow2 image with its backing chain.</summary>
    public static async ValueTask<BlockNode> OpenAsync(LeafSpec spec)
    {
        if (!Formats.Contains(spec.Format))
        {
            throw new ControlException(ControlErrorCodes.InvalidParams, $"unknown format '{spec.Format}' (expected one of: {string.Join(", ", Formats)})");
        }
        try
        {
            var (node, _) = await DiskImage.OpenAsync(spec.File, new DiskImageOptions
            {
                Format = spec.Format,
                ReadOnly = spec.ReadOnly,
                Direct = spec.Direct,
                Locking = spec.Locking,
            }).ConfigureAwait(false);
            return node;
        }
        catch (ImageOpenException e)
        {
            throw Translate(e);
        }
        catch (BlockException e)
        {
            throw new ControlException(ControlErrorCodes.IoError, $"{spec.File}: {e.Message}", e);
        }
        catch (ArgumentException e)
        {
            throw new ControlException(ControlErrorCodes.InvalidParams, $"{spec.File}: {e.Message}", e);
        }
    }

    /// <summary>Maps an open failure to a control error.</summary>
    public static ControlException Translate(ImageOpenException e) => new(e.Reason switch
    {
        ImageOpenError.NotFound => ControlErrorCodes.NotFound,
        ImageOpenError.PermissionDenied => ControlErrorCodes.PermissionDenied,
        ImageOpenError.Locked or ImageOpenError.Busy => ControlErrorCodes.Locked,
        ImageOpenError.NotFileOrDevice => ControlErrorCodes.InvalidParams,
        _ => ControlErrorCodes.IoError,
    }, e.Message, e);
}
