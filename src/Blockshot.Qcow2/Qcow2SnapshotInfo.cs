namespace Blockshot.Qcow2;

/// <summary>An internal snapshot of an image.</summary>
/// <param name="Id">The unique id (decimal numbers by convention).</param>
/// <param name="Name">The name.</param>
/// <param name="DateSeconds">When it was taken, seconds since the epoch.</param>
/// <param name="DateNanoseconds">Sub-second part of the date.</param>
/// <param name="VmStateSize">Bytes of saved VM state (0 for disk-only snapshots).</param>
/// <param name="VmClockNanoseconds">Guest run time when taken.</param>
/// <param name="DiskSize">Virtual disk size when taken, if recorded.</param>
/// <param name="Icount">Record/replay instruction count, if recorded.</param>
public sealed record Qcow2SnapshotInfo(
    string Id,
    string Name,
    long DateSeconds,
    long DateNanoseconds,
    long VmStateSize,
    long VmClockNanoseconds,
    long? DiskSize,
    ulong? Icount)
{
    /// <summary>The date as a timestamp.</summary>
    public DateTimeOffset Date => DateTimeOffset.FromUnixTimeSeconds(DateSeconds).AddTicks(DateNanoseconds / 100);
}
