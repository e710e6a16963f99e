using Blockshot.Fuse;

namespace Blockshot.Daemon.Interop.Tests;

/// <summary>Mounting filesystems in tests, and taking away whatever a test left mounted or attached.</summary>
public static class Mounts
{
    /// <summary>True when /proc/self/mountinfo has a mount whose mount point is <paramref name="path"/>.</summary>
    public static bool MountedAt(string path) =>
        File.ReadLines("/proc/self/mountinfo").Any(line => line.Split(' ') is { Length: > 4 } fields && fields[4] == path);

    /// <summary>Mounts <paramref name="device"/> on <paramref name="directory"/> and remembers it in <paramref name="mounted"/> for cleanup.</summary>
    public static async Task MountAsync(string device, string directory, ICollection<string> mounted, params string[] options)
    {
        (await Run.ToEndAsync("mount", [.. options, device, directory])).Ok($"mount {device} {directory}");
        mounted.Add(directory);
    }

    /// <summary>Unmounts <paramref name="directory"/> (it must succeed) and forgets it.</summary>
    public static async Task UnmountAsync(string directory, ICollection<string> mounted)
    {
        (await Run.ToEndAsync("umount", [directory])).Ok($"umount {directory}");
        mounted.Remove(directory);
    }

    /// <summary>
    /// For finally blocks: unmounts what is still mounted (lazily if busy), so that nothing is left for a
    /// directory delete to walk into. Call before the daemon that serves the devices goes away.
    /// </summary>
    public static async Task UnmountAllAsync(IEnumerable<string> mounted)
    {
        foreach (var directory in mounted.Reverse().ToList())
        {
            if ((await Run.ToEndAsync("umount", [directory])).ExitCode != 0)
            {
                await Run.ToEndAsync("umount", ["-l", directory]);
            }
        }
    }

    /// <summary>For finally blocks, after the daemon is gone: stale FUSE mounts on <paramref name="files"/> and loop devices on them.</summary>
    public static void CleanupFuse(params string[] files)
    {
        foreach (var file in files)
        {
            FuseMount.CleanupStale(file);
            LoopDevice.DetachByBackingFile(file);
        }
    }
}
