namespace Blockshot.Fuse;

/// <summary>What <see cref="FuseMount.CleanupStale"/> cleaned up.</summary>
/// <param name="Path">The mountpoint looked at, as a full path.</param>
/// <param name="MountsRemoved">Stale mounts unmounted there (mounts can stack).</param>
/// <param name="LoopDevicesDetached">Loop devices that were backed by the stale file and were detached.</param>
public sealed record FuseStaleCleanup(string Path, int MountsRemoved, IReadOnlyList<string> LoopDevicesDetached)
{
    /// <summary>True when anything was cleaned.</summary>
    public bool CleanedAnything => MountsRemoved > 0 || LoopDevicesDetached.Count > 0;
}
