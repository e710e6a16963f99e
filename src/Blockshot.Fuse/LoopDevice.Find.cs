using Blockshot.Fuse.Native;

namespace Blockshot.Fuse;

/// <summary>Finding loop devices by what backs them, and detaching them (stale cleanup).</summary>
public sealed partial class LoopDevice
{
    /// <summary>The loop devices whose backing file is <paramref name="path"/> (from /sys/block/loopN/loop/backing_file).</summary>
    public static IReadOnlyList<string> FindByBackingFile(string path)
    {
        var full = System.IO.Path.GetFullPath(path);
        var result = new List<string>();
        foreach (var number in BoundNumbers())
        {
            if (SameFile(ReadBackingFile(number), full))
            {
                result.Add(DevicePath(number));
            }
        }
        return result;
    }

    /// <summary>Detaches every loop device backed by <paramref name="path"/>; returns their paths.</summary>
    public static IReadOnlyList<string> DetachByBackingFile(string path)
    {
        var found = FindByBackingFile(path);
        foreach (var device in found)
        {
            Detach(device);
        }
        return found;
    }

    /// <summary>
    /// Detaches the loop devices backed by <paramref name="path"/>, or by any file on the filesystem with
    /// device number <paramref name="major"/>:<paramref name="minor"/> (a stale FUSE mount's file, whose
    /// path the kernel may no longer report as it was). Returns the devices detached.
    /// </summary>
    internal static List<string> DetachBackedBy(string path, uint major, uint minor)
    {
        var encoded = (minor & 0xff) | (major << 8) | ((minor & ~0xffu) << 12); // the kernel's new_encode_dev
        var result = new List<string>();
        foreach (var number in BoundNumbers())
        {
            var device = DevicePath(number);
            var match = SameFile(ReadBackingFile(number), path);
            if (!match)
            {
                var fd = Libc.Open(device, Libc.ORdOnly | Libc.OCloExec | Libc.ONonBlock, 0);
                if (fd >= 0)
                {
                    match = GetStatus(fd) is { } status && status.Device == encoded;
                    Libc.CloseQuietly(fd);
                }
            }
            if (match)
            {
                Detach(device);
                result.Add(device);
            }
        }
        return result;
    }
}
