using System.Runtime.CompilerServices;
using Blockshot.Core;
using Blockshot.Snapshots;

namespace Blockshot.Daemon.SnapshotSets;

/// <summary>
/// What a snapshot export serves: the snapshot image, plus the <c>qemu:dirty-bitmap:NAME</c> context of
/// the blocks changed since the previous snapshot (when the device is tracked). Writes to a writable
/// image are changes to the device's data too, so they are marked in change tracking before they land,
/// and in the snapshot's own bitmap (the image now differs from the previous backup there).
/// </summary>
internal sealed class SnapshotExportNode : FilterNode
{
    private readonly DirtyBitmapView? _marking;
    private readonly IReadOnlyList<BlockStatusContext> _contexts;

    public SnapshotExportNode(SnapshotImage image, DirtyBitmapView? bitmap, string bitmapName)
        : base(image, Ownership.None)
    {
        _marking = image.Snapshot.Options.Writable ? bitmap : null;
        _contexts = bitmap is null ? image.StatusContexts : [.. image.StatusContexts, bitmap.Context(bitmapName)];
    }

    /// <inheritdoc/>
    public override string Kind => "snapshot-export";

    /// <inheritdoc/>
    public override IReadOnlyList<BlockStatusContext> StatusContexts => _contexts;

    /// <inheritdoc/>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public override async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, IoFlags flags)
    {
        if (_marking is not null)
        {
            await _marking.MarkImageWriteAsync(offset, data.Length).ConfigureAwait(false);
        }
        await Next.WriteAsync(offset, data, flags).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public override async ValueTask WriteZeroesAsync(long offset, long length, IoFlags flags)
    {
        if (_marking is not null)
        {
            await _marking.MarkImageWriteAsync(offset, length).ConfigureAwait(false);
        }
        await Next.WriteZeroesAsync(offset, length, flags).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public override async ValueTask TrimAsync(long offset, long length, IoFlags flags)
    {
        if (_marking is not null)
        {
            await _marking.MarkImageWriteAsync(offset, length).ConfigureAwait(false);
        }
        await Next.TrimAsync(offset, length, flags).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public override string Describe() => Next.Describe();
}
