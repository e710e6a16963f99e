namespace Blockshot.Core.Extents;

/// <summary>A half-open range of bytes <c>[Offset, Offset + Length)</c>.</summary>
/// <param name="Offset">First byte.</param>
/// <param name="Length">Number of bytes (never negative).</param>
public readonly record struct ByteRange(long Offset, long Length)
{
    /// <summary>One past the last byte.</summary>
    public long End => Offset + Length;

    /// <summary>True for a range of no bytes.</summary>
    public bool IsEmpty => Length <= 0;

    /// <summary>Builds the range <c>[start, end)</c>.</summary>
    public static ByteRange FromBounds(long start, long end) => new(start, Math.Max(0, end - start));

    /// <summary>True when the ranges share at least one byte.</summary>
    public bool Overlaps(ByteRange other) => Offset < other.End && other.Offset < End && !IsEmpty && !other.IsEmpty;

    /// <summary>True when <paramref name="other"/> lies wholly inside this range.</summary>
    public bool Contains(ByteRange other) => other.Offset >= Offset && other.End <= End;

    /// <summary>The bytes both ranges share (empty if none).</summary>
    public ByteRange Intersect(ByteRange other) => FromBounds(Math.Max(Offset, other.Offset), Math.Min(End, other.End));

    /// <summary>The range widened outward to multiples of <paramref name="alignment"/> (a power of two).</summary>
    public ByteRange AlignOutward(long alignment) =>
        FromBounds(Offset & ~(alignment - 1), (End + alignment - 1) & ~(alignment - 1));

    /// <summary>The range narrowed inward to multiples of <paramref name="alignment"/> (a power of two).</summary>
    public ByteRange AlignInward(long alignment) =>
        FromBounds((Offset + alignment - 1) & ~(alignment - 1), End & ~(alignment - 1));

    /// <inheritdoc/>
    public override string ToString() => $"[{Offset}, {End})";
}
