using Blockshot.Core.Extents;

namespace Blockshot.Core;

/// <summary>
/// A node that sits on another node and forwards every request it does not override. A filter holds
/// only the state it touches; anything shared between requests names the lock that guards it.
/// </summary>
public abstract class FilterNode : BlockNode
{
    private readonly Ownership _ownership;

    /// <summary>Creates a filter over <paramref name="next"/>.</summary>
    protected FilterNode(BlockNode next, Ownership ownership = Ownership.None)
    {
        ArgumentNullException.ThrowIfNull(next);
        Next = next;
        _ownership = ownership;
    }

    /// <summary>The node below.</summary>
    public BlockNode Next { get; }

    /// <inheritdoc/>
    public override long Size => Next.Size;

    /// <inheritdoc/>
    public override IReadOnlyList<BlockStatusContext> StatusContexts => Next.StatusContexts;

    /// <inheritdoc/>
    protected override NodeCapabilities ComputeCapabilities() => Next.Capabilities;

    /// <inheritdoc/>
    public override ValueTask ReadAsync(long offset, Memory<byte> buffer) => Next.ReadAsync(offset, buffer);

    /// <inheritdoc/>
    public override ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, IoFlags flags) =>
        Next.WriteAsync(offset, data, flags);

    /// <inheritdoc/>
    public override ValueTask WriteZeroesAsync(long offset, long length, IoFlags flags) =>
        Next.WriteZeroesAsync(offset, length, flags);

    /// <inheritdoc/>
    public override ValueTask TrimAsync(long offset, long length, IoFlags flags) => Next.TrimAsync(offset, length, flags);

    /// <inheritdoc/>
    public override ValueTask FlushAsync() => Next.FlushAsync();

    /// <inheritdoc/>
    public override ValueTask CacheAsync(long offset, long length) => Next.CacheAsync(offset, length);

    /// <inheritdoc/>
    public override ValueTask GetExtentsAsync(long offset, long length, ExtentList extents) =>
        Next.GetExtentsAsync(offset, length, extents);

    /// <inheritdoc/>
    public override ValueTask ResizeAsync(long newSize) => Next.ResizeAsync(newSize);

    /// <inheritdoc/>
    public override string Describe() => $"{Kind} → {Next.Describe()}";

    /// <inheritdoc/>
    protected override ValueTask DisposeCoreAsync() =>
        _ownership == Ownership.Dispose ? Next.DisposeAsync() : default;
}
