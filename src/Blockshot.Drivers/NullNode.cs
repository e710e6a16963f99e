using Blockshot.Core;
using Blockshot.Core.Extents;

namespace Blockshot.Drivers;

/// <summary>A device that reads as zeros and discards writes: a sink for benchmarks and copies.</summary>
public sealed class NullNode(long size) : BlockNode
{
    /// <inheritdoc/>
    public override string Kind => "null";

    /// <inheritdoc/>
    public override long Size { get; } = size;

    /// <inheritdoc/>
    protected override NodeCapabilities ComputeCapabilities() => new(
        NodeFeatures.Write | NodeFeatures.Flush | NodeFeatures.Fua | NodeFeatures.Trim | NodeFeatures.WriteZeroes
        | NodeFeatures.FastZero | NodeFeatures.Extents | NodeFeatures.MultiConn);

    /// <inheritdoc/>
    public override ValueTask ReadAsync(long offset, Memory<byte> buffer)
    {
        buffer.Span.Clear();
        return default;
    }

    /// <inheritdoc/>
    public override ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, IoFlags flags) => default;

    /// <inheritdoc/>
    public override ValueTask WriteZeroesAsync(long offset, long length, IoFlags flags) => default;

    /// <inheritdoc/>
    public override ValueTask TrimAsync(long offset, long length, IoFlags flags) => default;

    /// <inheritdoc/>
    public override ValueTask GetExtentsAsync(long offset, long length, ExtentList extents)
    {
        extents.Add(length, AllocationFlags.HoleZero);
        return default;
    }
}
