namespace Blockshot.Tracking;

/// <summary>What a tracker reports about itself.</summary>
/// <param name="Generation">Changes this generation; a backup from another generation cannot be the base of an incremental.</param>
/// <param name="GenerationReason">Why the generation began (first attach, resize, wrap-around, an unclean stop…).</param>
/// <param name="BlockSize">Bytes per tracking block.</param>
/// <param name="Period">The current period: changes now are marked with it; the next snapshot ends it.</param>
/// <param name="ChangedBlocks">Blocks changed since the generation began.</param>
/// <param name="ChangedInPeriod">Blocks changed in the current period.</param>
/// <param name="MapBytes">Memory the map uses.</param>
/// <param name="Persistent">True when a sidecar keeps the map across restarts.</param>
public sealed record TrackerInfo(Guid Generation, string GenerationReason, int BlockSize, byte Period, long ChangedBlocks, long ChangedInPeriod, long MapBytes, bool Persistent);
