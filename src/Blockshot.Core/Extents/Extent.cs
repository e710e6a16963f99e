namespace Blockshot.Core.Extents;

/// <summary>A run of bytes that share one status value.</summary>
/// <param name="Offset">First byte of the run.</param>
/// <param name="Length">Length of the run in bytes.</param>
/// <param name="Flags">Status value, whose meaning depends on the context that produced it.</param>
public readonly record struct Extent(long Offset, long Length, uint Flags)
{
    /// <summary>One past the last byte.</summary>
    public long End => Offset + Length;
}
