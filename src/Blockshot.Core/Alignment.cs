using System.Numerics;

namespace Blockshot.Core;

/// <summary>
/// A request split at <c>alignment</c> boundaries into an unaligned head, an aligned body and an
/// unaligned tail. Head and tail each lie inside one aligned block; any part may be empty.
/// </summary>
/// <param name="Offset">Start of the request.</param>
/// <param name="HeadLength">Bytes before the first boundary (0 if the request starts aligned).</param>
/// <param name="BodyLength">Aligned bytes in the middle, a multiple of the alignment.</param>
/// <param name="TailLength">Bytes after the last boundary (0 if the request ends aligned).</param>
public readonly record struct AlignedSplit(long Offset, int HeadLength, long BodyLength, int TailLength)
{
    /// <summary>Start of the body.</summary>
    public long BodyOffset => Offset + HeadLength;

    /// <summary>Start of the tail.</summary>
    public long TailOffset => BodyOffset + BodyLength;

    /// <summary>Splits <c>[offset, offset + length)</c> at multiples of <paramref name="alignment"/> (a power of two).</summary>
    public static AlignedSplit Of(long offset, long length, int alignment)
    {
        if (alignment <= 0 || !BitOperations.IsPow2(alignment))
        {
            throw new ArgumentOutOfRangeException(nameof(alignment), alignment, "alignment must be a power of two");
        }
        long mask = alignment - 1;
        var end = offset + length;
        var firstBoundary = (offset + mask) & ~mask;
        if (firstBoundary >= end)
        {
            // Inside one block, or ending exactly at its boundary.
            return (offset & mask) == 0 && (end & mask) == 0
                ? new AlignedSplit(offset, 0, length, 0)
                : new AlignedSplit(offset, (int)length, 0, 0);
        }
        var head = (int)(firstBoundary - offset);
        var lastBoundary = end & ~mask;
        return new AlignedSplit(offset, head, lastBoundary - firstBoundary, (int)(end - lastBoundary));
    }
}

/// <summary>Power-of-two rounding helpers.</summary>
public static class Align
{
    /// <summary>Rounds <paramref name="value"/> down to a multiple of <paramref name="alignment"/> (a power of two).</summary>
    public static long Down(long value, long alignment) => value & ~(alignment - 1);

    /// <summary>Rounds <paramref name="value"/> up to a multiple of <paramref name="alignment"/> (a power of two).</summary>
    public static long Up(long value, long alignment) => (value + alignment - 1) & ~(alignment - 1);

    /// <summary>True when <paramref name="value"/> is a multiple of <paramref name="alignment"/> (a power of two).</summary>
    public static bool IsAligned(long value, long alignment) => (value & (alignment - 1)) == 0;
}
