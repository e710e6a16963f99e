using System.Runtime.CompilerServices;
using Blockshot.Core;

namespace Blockshot.Daemon.Mirror;

/// <summary>
/// Sits right above the leaf while a mirror runs and tells the copier what changed (see
/// <see cref="MirrorState"/> for the two modes). Reads, flushes and extents pass through. Resizing is
/// refused while a mirror runs.
/// </summary>
internal sealed class MirrorFilter(BlockNode next, MirrorState state) : FilterNode(next, Ownership.None)
{
    public override string Kind => "mirror";

    public override ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, IoFlags flags) =>
        state.Active ? WriteBothAsync(offset, data, flags) : WriteAndMarkAsync(offset, data, flags);

    public override ValueTask WriteZeroesAsync(long offset, long length, IoFlags flags) =>
        state.Active ? ZeroBothAsync(offset, length, flags) : ZeroAndMarkAsync(offset, length, flags);

    // Trimmed bytes read back as whatever the source chooses, so the chunk is copied rather than trimmed on the target.
    public override ValueTask TrimAsync(long offset, long length, IoFlags flags) => TrimAndMarkAsync(offset, length, flags);

    public override ValueTask ResizeAsync(long newSize) =>
        ValueTask.FromException(new BlockException(BlockError.NotSupported, "the device cannot be resized while a mirror job runs"));

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteAndMarkAsync(long offset, ReadOnlyMemory<byte> data, IoFlags flags)
    {
        try
        {
            await Next.WriteAsync(offset, data, flags).ConfigureAwait(false);
        }
        finally
        {
            state.MarkDirty(offset, data.Length);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteBothAsync(long offset, ReadOnlyMemory<byte> data, IoFlags flags)
    {
        using var held = await state.Locks.AcquireAsync(offset, data.Length).ConfigureAwait(false);
        try
        {
            await Next.WriteAsync(offset, data, flags).ConfigureAwait(false);
        }
        catch
        {
            state.MarkDirty(offset, data.Length);
            throw;
        }
        try
        {
            await state.Target.WriteAsync(offset, data, IoFlags.None).ConfigureAwait(false);
        }
        catch (IOException)
        {
            state.TargetFailed(offset, data.Length);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ZeroAndMarkAsync(long offset, long length, IoFlags flags)
    {
        try
        {
            await Next.WriteZeroesAsync(offset, length, flags).ConfigureAwait(false);
        }
        finally
        {
            state.MarkDirty(offset, length);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ZeroBothAsync(long offset, long length, IoFlags flags)
    {
        using var held = await state.Locks.AcquireAsync(offset, length).ConfigureAwait(false);
        try
        {
            await Next.WriteZeroesAsync(offset, length, flags).ConfigureAwait(false);
        }
        catch
        {
            state.MarkDirty(offset, length);
            throw;
        }
        try
        {
            await state.Target.WriteZeroesAsync(offset, length, flags & IoFlags.MayTrim).ConfigureAwait(false);
        }
        catch (IOException)
        {
            state.TargetFailed(offset, length);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask TrimAndMarkAsync(long offset, long length, IoFlags flags)
    {
        try
        {
            await Next.TrimAsync(offset, length, flags).ConfigureAwait(false);
        }
        finally
        {
            state.MarkDirty(offset, length);
        }
    }
}
