namespace Blockshot.Snapshots.Storage;

/// <summary>
/// Where a snapshot's chunk lives, as the <c>blockshot:copy-order</c> status context reports it, so a
/// reader can copy what is cheapest, and what is pinning memory, first.
/// </summary>
public static class CopyOrder
{
    /// <summary>Still on the origin device (unchanged since the take).</summary>
    public const uint Origin = 0;

    /// <summary>Held in the RAM tier of the difference storage.</summary>
    public const uint Ram = 1;

    /// <summary>Held in the disk tier (or a store without tiers).</summary>
    public const uint Disk = 2;

    /// <summary>Reads as zeros and costs nothing to copy.</summary>
    public const uint Zero = 4;

    /// <summary>Discarded by a reader: gone.</summary>
    public const uint Discarded = 8;
}
