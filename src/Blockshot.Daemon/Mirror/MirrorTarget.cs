using Blockshot.Core;
using Blockshot.Daemon.Devices;
using Blockshot.Daemon.Protocol;

namespace Blockshot.Daemon.Mirror;

/// <summary>A mirror's opened target: its node, how to reopen it, and whether it is known to read as zeros.</summary>
internal sealed record MirrorTarget(BlockNode Node, LeafSpec Spec, bool KnownZero, bool Created)
{
    /// <summary>
    /// Opens <paramref name="path"/> as the target for a device of <paramref name="size"/> bytes: a missing
    /// file is created sparse, an empty file is extended, an existing file must have the device's size
    /// and a block device at least that size (exactly, to pivot).
    /// </summary>
    public static async Task<MirrorTarget> OpenAsync(string path, long size, bool pivot, LeafSpec source)
    {
        var full = Path.GetFullPath(path);
        if (full == source.File)
        {
            throw new ControlException(ControlErrorCodes.InvalidParams, $"{full} is the device's own image");
        }
        var created = false;
        var knownZero = false;
        var info = new FileInfo(full);
        if (!info.Exists && !Directory.Exists(full))
        {
            if (!Directory.Exists(info.DirectoryName))
            {
                throw new ControlException(ControlErrorCodes.NotFound, $"directory {info.DirectoryName} does not exist");
            }
            try
            {
                using var stream = new FileStream(full, FileMode.CreateNew, FileAccess.Write);
                stream.SetLength(size);
            }
            catch (UnauthorizedAccessException e)
            {
                throw new ControlException(ControlErrorCodes.PermissionDenied, $"permission denied creating {full}", e);
            }
            catch (IOException e)
            {
                throw new ControlException(ControlErrorCodes.IoError, $"cannot create {full}: {e.Message}", e);
            }
            created = true;
            knownZero = true;
        }
        else if (info.Exists && (info.Attributes & FileAttributes.Device) == 0 && info.Length == 0)
        {
            using (var stream = new FileStream(full, FileMode.Open, FileAccess.Write))
            {
                stream.SetLength(size);
            }
            knownZero = true;
        }
        var spec = new LeafSpec(full, "raw", ReadOnly: false, source.Direct, Locking: true);
        var node = await LeafOpener.OpenAsync(spec).ConfigureAwait(false);
        var fits = node.Size == size || (node.Size > size && !pivot && IsBlockDevice(node));
        if (!fits)
        {
            var actual = node.Size;
            await node.DisposeAsync().ConfigureAwait(false);
            throw new ControlException(ControlErrorCodes.InvalidParams,
                $"{full} holds {actual} bytes; the device has {size} (use a new or empty file, or a device of exactly that size to pivot)");
        }
        return new MirrorTarget(node, spec, knownZero, created);
    }

    private static bool IsBlockDevice(BlockNode node) => node is Drivers.RawFileNode { IsBlockDevice: true };
}
