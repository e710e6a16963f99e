namespace Blockshot.Filters.Fault;

/// <summary>Which requests a <see cref="FaultFilter"/> disturbs, and how.</summary>
/// <param name="Ops">Request kinds the rule applies to.</param>
/// <param name="Error">The error injected (or <see cref="FaultError.None"/> to delay only).</param>
/// <param name="Offset">Start of the byte range requests must overlap (flushes always match).</param>
/// <param name="Length">Length of the range; 0 means to the end of the device.</param>
/// <param name="Probability">Chance, 0 to 1, that a matching request is disturbed.</param>
/// <param name="Delay">How long a disturbed request waits before it proceeds or fails.</param>
/// <param name="After">Matching requests let through before the rule starts.</param>
/// <param name="Count">Most requests disturbed; 0 means no limit.</param>
public sealed record FaultRule(
    FaultOps Ops,
    FaultError Error,
    long Offset = 0,
    long Length = 0,
    double Probability = 1.0,
    TimeSpan Delay = default,
    long After = 0,
    long Count = 0)
{
    /// <summary>True when <c>[offset, offset + length)</c> overlaps the rule's range.</summary>
    public bool Overlaps(long offset, long length)
    {
        var end = Length == 0 ? long.MaxValue : Offset + Length;
        return offset < end && Offset < offset + Math.Max(length, 1);
    }
}
