using Blockshot.Core;

namespace Blockshot.Snapshots.Storage;

/// <summary>
/// Difference storage on a block node: a file (which grows by resizing), a host block device (fixed
/// size), or memory. Slot <c>n</c> lives at byte <c>n × chunk size</c>. Freed slots are trimmed so a
/// file gives the space back.
/// </summary>
public sealed class NodeDiffStore : DiffStore
{
    private readonly BlockNode _node;
    private readonly Ownership _ownership;
    private readonly bool _growable;

    /// <summary>Stores chunks on <paramref name="node"/>.</summary>
    public NodeDiffStore(BlockNode node, int chunkSize, DiffStoreOptions options, Ownership ownership = Ownership.Dispose)
        : base(chunkSize, options)
    {
        ArgumentNullException.ThrowIfNull(node);
        _node = node;
        _ownership = ownership;
        _growable = node.Capabilities.Has(NodeFeatures.Resize);
        if (!_growable)
        {
            SetCapacity(node.Size);
        }
    }

    /// <inheritdoc/>
    public override string Description => _node.Describe();

    /// <summary>The node the chunks are stored on.</summary>
    public BlockNode Node => _node;

    /// <inheritdoc/>
    protected override long MediumLimitBytes => _growable ? long.MaxValue : _node.Size - (_node.Size % ChunkSize);

    /// <inheritdoc/>
    protected override async ValueTask<long> GrowToAsync(long bytes)
    {
        if (_growable && bytes > _node.Size)
        {
            var old = _node.Size;
            await _node.ResizeAsync(bytes).ConfigureAwait(false);
            // Allocate the new space now (zero-range, not a hole): a copy into a hole makes the file
            // system allocate under the file's lock, one writer at a time, where allocated blocks take
            // any number of writers at once.
            try
            {
                await _node.WriteZeroesAsync(old, bytes - old, IoFlags.None).ConfigureAwait(false);
            }
            catch (BlockException e) when (e.Error is BlockError.NoSpace or BlockError.NotSupported)
            {
                // The medium cannot allocate the whole step now: the step stays sparse, and a copy that
                // then finds no space fails like any store write, under the snapshot's overflow policy.
            }
        }
        return Math.Min(bytes, _node.Size);
    }

    /// <inheritdoc/>
    public override ValueTask WriteAsync(long slot, int offset, ReadOnlyMemory<byte> data) =>
        _node.WriteAsync((slot * ChunkSize) + offset, data, IoFlags.None);

    /// <inheritdoc/>
    public override ValueTask ReadAsync(long slot, int offset, Memory<byte> buffer) =>
        _node.ReadAsync((slot * ChunkSize) + offset, buffer);

    /// <inheritdoc/>
    public override ValueTask ReadRunAsync(long firstSlot, int offset, Memory<byte> buffer) =>
        _node.ReadAsync((firstSlot * ChunkSize) + offset, buffer);

    /// <inheritdoc/>
    public override ValueTask FlushAsync() => _node.FlushAsync();

    /// <inheritdoc/>
    protected override ValueTask ReleaseAsync(long slot) =>
        _node.Capabilities.Has(NodeFeatures.Trim) ? _node.TrimAsync(slot * ChunkSize, ChunkSize, IoFlags.None) : default;

    /// <inheritdoc/>
    public override async ValueTask DisposeAsync()
    {
        // The base waits for a background growth step first: it may still be resizing the node.
        await base.DisposeAsync().ConfigureAwait(false);
        if (_ownership == Ownership.Dispose)
        {
            await _node.DisposeAsync().ConfigureAwait(false);
        }
    }
}
