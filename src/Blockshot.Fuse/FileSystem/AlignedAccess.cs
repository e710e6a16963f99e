using System.Runtime.CompilerServices;
using Blockshot.Core;
using Blockshot.Core.Buffers;

namespace Blockshot.Fuse.FileSystem;

/// <summary>
/// Lets byte-granular file I/O reach a node that wants requests aligned to its minimum block size.
/// A node with a minimum of one byte is called directly, without locks. Otherwise unaligned reads go
/// through a bounce buffer, and unaligned writes become read-modify-write of the covering blocks.
/// <para>
/// Lock: <see cref="_lock"/> guards the blocks a read-modify-write rewrites. A read-modify-write holds
/// its aligned range exclusively; aligned writes, zeroes and trims hold theirs shared, so they never
/// slip between the read and the write of an overlapping read-modify-write. Reads take no lock.
/// </para>
/// </summary>
internal sealed class AlignedAccess
{
    private readonly BlockNode _node;
    private readonly BufferPool _pool;
    private readonly int _block;
    private readonly RangeLock? _lock;
    private readonly byte[] _zeros;

    public AlignedAccess(BlockNode node, BufferPool pool)
    {
        _node = node;
        _pool = pool;
        _block = Math.Max(1, node.Capabilities.MinBlockSize);
        if (_block > 1)
        {
            _lock = new RangeLock();
        }
        _zeros = new byte[_block];
    }

    /// <summary>The alignment the node wants (1 when any request will do).</summary>
    public int BlockSize => _block;

    /// <summary>Reads <paramref name="buffer"/> at <paramref name="offset"/>; the range lies inside the node.</summary>
    public ValueTask ReadAsync(long offset, Memory<byte> buffer) =>
        _block == 1 || IsAligned(offset, buffer.Length) ? _node.ReadAsync(offset, buffer) : ReadUnalignedAsync(offset, buffer);

    /// <summary>Writes <paramref name="data"/> at <paramref name="offset"/>; the range lies inside the node.</summary>
    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, IoFlags flags)
    {
        if (_block == 1)
        {
            return _node.WriteAsync(offset, data, flags);
        }
        return IsAligned(offset, data.Length) ? WriteAlignedAsync(offset, data, flags) : ReadModifyWriteAsync(offset, data, flags);
    }

    /// <summary>Zeroes <c>[offset, offset + length)</c>: the aligned body by write-zeroes, any partial blocks by read-modify-write.</summary>
    public ValueTask WriteZeroesAsync(long offset, long length, IoFlags flags) =>
        _block == 1 ? _node.WriteZeroesAsync(offset, length, flags) : ZeroUnalignedAsync(offset, length, flags);

    /// <summary>Trims the whole blocks of <c>[offset, offset + length)</c> (a trim is a hint; partial blocks are left).</summary>
    public ValueTask TrimAsync(long offset, long length, IoFlags flags) =>
        _block == 1 ? _node.TrimAsync(offset, length, flags) : TrimAlignedAsync(offset, length, flags);

    private bool IsAligned(long offset, long length) => Align.IsAligned(offset, _block) && (Align.IsAligned(length, _block) || offset + length == _node.Size);

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReadUnalignedAsync(long offset, Memory<byte> buffer)
    {
        var start = Align.Down(offset, _block);
        var end = Math.Min(Align.Up(offset + buffer.Length, _block), _node.Size);
        var bounce = _pool.Rent(checked((int)(end - start)));
        try
        {
            await _node.ReadAsync(start, bounce.Memory).ConfigureAwait(false);
            bounce.Memory.Slice((int)(offset - start), buffer.Length).CopyTo(buffer);
        }
        finally
        {
            bounce.Return();
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteAlignedAsync(long offset, ReadOnlyMemory<byte> data, IoFlags flags)
    {
        using var held = await _lock!.AcquireAsync(offset, data.Length, shared: true).ConfigureAwait(false);
        await _node.WriteAsync(offset, data, flags).ConfigureAwait(false);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReadModifyWriteAsync(long offset, ReadOnlyMemory<byte> data, IoFlags flags)
    {
        var start = Align.Down(offset, _block);
        var end = Math.Min(Align.Up(offset + data.Length, _block), _node.Size);
        var length = checked((int)(end - start));
        using var held = await _lock!.AcquireAsync(start, length, shared: false).ConfigureAwait(false);
        var bounce = _pool.Rent(length);
        try
        {
            var memory = bounce.Memory;
            // Only the first and last blocks hold bytes the write does not cover.
            var first = Math.Min(_block, length);
            await _node.ReadAsync(start, memory[..first]).ConfigureAwait(false);
            if (length > _block)
            {
                var lastStart = Align.Down(length - 1, _block);
                await _node.ReadAsync(start + lastStart, memory[(int)lastStart..]).ConfigureAwait(false);
            }
            data.CopyTo(memory[(int)(offset - start)..]);
            await _node.WriteAsync(start, memory, flags).ConfigureAwait(false);
        }
        finally
        {
            bounce.Return();
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ZeroUnalignedAsync(long offset, long length, IoFlags flags)
    {
        var split = AlignedSplit.Of(offset, length, _block);
        if (split.HeadLength > 0)
        {
            await ReadModifyWriteAsync(offset, _zeros.AsMemory(0, split.HeadLength), flags & IoFlags.Fua).ConfigureAwait(false);
        }
        if (split.BodyLength > 0)
        {
            using var held = await _lock!.AcquireAsync(split.BodyOffset, split.BodyLength, shared: true).ConfigureAwait(false);
            await _node.WriteZeroesAsync(split.BodyOffset, split.BodyLength, flags).ConfigureAwait(false);
        }
        if (split.TailLength > 0)
        {
            await ReadModifyWriteAsync(split.TailOffset, _zeros.AsMemory(0, split.TailLength), flags & IoFlags.Fua).ConfigureAwait(false);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask TrimAlignedAsync(long offset, long length, IoFlags flags)
    {
        var start = Align.Up(offset, _block);
        var end = offset + length == _node.Size ? offset + length : Align.Down(offset + length, _block);
        if (end > start)
        {
            using var held = await _lock!.AcquireAsync(start, end - start, shared: true).ConfigureAwait(false);
            await _node.TrimAsync(start, end - start, flags).ConfigureAwait(false);
        }
    }
}
