using Blockshot.Fuse;

namespace Blockshot.Daemon.Exports;

/// <summary>Takes away what a killed daemon left of one recorded FUSE mount: the stale mount, its loop devices, the file it created.</summary>
internal static class FuseStaleCleaner
{
    /// <summary>
    /// Unmounts a stale mount at the recorded path (detaching the loop devices on it first), detaches the
    /// recorded loop device if it is still bound to that path, and removes the mountpoint file the daemon
    /// created if it is empty again. A live mount there (another process serves it now) is left alone.
    /// </summary>
    public static FuseLeftoverCleanup Clean(FuseMountRecord record)
    {
        var stale = FuseMount.CleanupStale(record.Path);
        var detached = new List<string>(stale.LoopDevicesDetached);
        var live = FuseMount.IsFuseMounted(record.Path);
        if (!live && record.LoopDevice is { } loop && LoopDevice.FindByBackingFile(record.Path).Contains(loop))
        {
            LoopDevice.Detach(loop);
            detached.Add(loop);
        }
        var removedFile = false;
        if (!live && record.CreatedFile && new FileInfo(record.Path) is { Exists: true, Length: 0 } file
            && LoopDevice.FindByBackingFile(record.Path).Count == 0)
        {
            file.Delete();
            removedFile = true;
        }
        return new FuseLeftoverCleanup(record.Path, stale.MountsRemoved, detached, live, removedFile);
    }
}

/// <summary>What <see cref="FuseStaleCleaner.Clean"/> did for one recorded mount.</summary>
/// <param name="Path">The recorded mountpoint.</param>
/// <param name="MountsRemoved">Stale mounts taken away there.</param>
/// <param name="LoopDevicesDetached">Loop devices detached.</param>
/// <param name="LeftLive">True when a live mount is there now (another process serves it); it was left alone.</param>
/// <param name="RemovedFile">True when the empty mountpoint file the daemon had created was removed.</param>
internal sealed record FuseLeftoverCleanup(string Path, int MountsRemoved, IReadOnlyList<string> LoopDevicesDetached, bool LeftLive, bool RemovedFile)
{
    public override string ToString() =>
        $"{Path}: {MountsRemoved} stale mount(s) removed, loop devices detached: {(LoopDevicesDetached.Count == 0 ? "none" : string.Join(", ", LoopDevicesDetached))}"
        + (LeftLive ? "; a live mount there was left alone" : "") + (RemovedFile ? "; the mountpoint file was removed" : "");
}
