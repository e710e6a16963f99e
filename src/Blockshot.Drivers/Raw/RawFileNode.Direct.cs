using System.Buffers;
using System.Runtime.CompilerServices;
using Blockshot.Core;
using Blockshot.Drivers.Raw;

namespace Blockshot.Drivers;

// O_DIRECT: requests whose offset, length or memory are not aligned go through page-aligned bounce
// buffers from the pool. Partial blocks are read, patched and written back.
//
// The lock: _rmwLock, a range lock over file offsets, used only by O_DIRECT nodes. A read-modify-write
// of a partial block reads bytes it does not own and writes them back, so nothing else may write that
// block in between, or the other write is lost. Therefore:
//  - a write, zero or trim that is not aligned takes its range rounded out to whole blocks, exclusive;
//    the read-modify-write of its head and tail blocks happens under it;
//  - an aligned write, zero or trim takes its exact range shared: aligned requests need not exclude
//    each other (they replace whole blocks), only the read-modify-writes that overlap them;
//  - reads take nothing: a read racing a write to the same bytes may see either, as on a disk, and a
//    read-modify-write writes back unchanged bytes with the values they already had.
// Nothing holding the lock calls back into a method that takes it.
public sealed partial class RawFileNode
{
    private readonly RangeLock _rmwLock = new();

    /// <summary>Blocks on which a read-modify-write or an aligned write holds the range lock now (for tests).</summary>
    internal int RangeLocksHeld => _rmwLock.HeldCount;

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReadDirectAsync(long offset, Memory<byte> buffer)
    {
        if (IsAligned(offset) && IsAligned(buffer.Length))
        {
            using var pin = buffer.Pin();
            if (IsMemoryAligned(pin))
            {
                await ReadExactAsync(offset, buffer).ConfigureAwait(false);
                return;
            }
        }
        await ReadBouncedAsync(offset, buffer).ConfigureAwait(false);
    }

    /// <summary>Reads through a bounce buffer, whole blocks at a time, copying out the part asked for.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReadBouncedAsync(long offset, Memory<byte> buffer)
    {
        var span = Align.Up(offset + buffer.Length, _alignment) - Align.Down(offset, _alignment);
        using var bounce = _pool.Rent((int)Math.Min(span, BounceSize));
        while (!buffer.IsEmpty)
        {
            var blockStart = Align.Down(offset, _alignment);
            var windowEnd = Math.Min(Align.Up(offset + buffer.Length, _alignment), blockStart + bounce.Length);
            var window = bounce.Memory[..(int)(windowEnd - blockStart)];
            await ReadExactAsync(blockStart, window).ConfigureAwait(false);
            var take = (int)Math.Min(buffer.Length, windowEnd - offset);
            window.Slice((int)(offset - blockStart), take).CopyTo(buffer);
            buffer = buffer[take..];
            offset += take;
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteDirectAsync(long offset, ReadOnlyMemory<byte> data, bool fua)
    {
        using var held = await LockForWriteAsync(offset, data.Length).ConfigureAwait(false);
        var split = AlignedSplit.Of(offset, data.Length, _alignment);
        if (split.HeadLength > 0)
        {
            await PatchBlockAsync(offset, data[..split.HeadLength], fua).ConfigureAwait(false);
        }
        if (split.BodyLength > 0)
        {
            await WriteAlignedAsync(split.BodyOffset, data.Slice(split.HeadLength, (int)split.BodyLength), fua).ConfigureAwait(false);
        }
        if (split.TailLength > 0)
        {
            await PatchBlockAsync(split.TailOffset, data[^split.TailLength..], fua).ConfigureAwait(false);
        }
    }

    /// <summary>Takes <see cref="_rmwLock"/> for a write-type request (see the file comment); no-op when buffered.</summary>
    private ValueTask<RangeLockHandle> LockForWriteAsync(long offset, long length)
    {
        if (!_direct)
        {
            return default;
        }
        if (IsAligned(offset) && IsAligned(length))
        {
            return _rmwLock.AcquireAsync(offset, length, shared: true);
        }
        var start = Align.Down(offset, _alignment);
        return _rmwLock.AcquireAsync(start, Align.Up(offset + length, _alignment) - start, shared: false);
    }

    /// <summary>Writes an aligned range, straight from the caller's memory when it is aligned too.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteAlignedAsync(long offset, ReadOnlyMemory<byte> data, bool fua)
    {
        using (var pin = data.Pin())
        {
            if (IsMemoryAligned(pin))
            {
                await WriteAtAsync(offset, data, fua).ConfigureAwait(false);
                return;
            }
        }
        using var bounce = _pool.Rent((int)Math.Min(data.Length, BounceSize));
        while (!data.IsEmpty)
        {
            var n = Math.Min(data.Length, bounce.Length);
            data[..n].CopyTo(bounce.Memory);
            await WriteAtAsync(offset, bounce.Memory[..n], fua).ConfigureAwait(false);
            data = data[n..];
            offset += n;
        }
    }

    /// <summary>
    /// Read-modify-write of the one block holding <c>[offset, offset + piece.Length)</c>; the caller
    /// holds that block exclusively in <see cref="_rmwLock"/>.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask PatchBlockAsync(long offset, ReadOnlyMemory<byte> piece, bool fua)
    {
        var blockStart = Align.Down(offset, _alignment);
        using var bounce = _pool.Rent(_alignment);
        await ReadExactAsync(blockStart, bounce.Memory).ConfigureAwait(false);
        piece.CopyTo(bounce.Memory[(int)(offset - blockStart)..]);
        await WriteAtAsync(blockStart, bounce.Memory, fua).ConfigureAwait(false);
        var size = Size;
        if (!_isBlockDevice && blockStart + _alignment > size)
        {
            // The file ends inside this block and O_DIRECT wrote all of it: cut the file back.
            var r = await SyscallOp.Truncate(_handle, size).ConfigureAwait(false);
            if (r < 0)
            {
                ThrowErrno(r, "truncate after write", offset, piece.Length);
            }
        }
    }

    private unsafe bool IsMemoryAligned(in MemoryHandle pin) => ((nuint)pin.Pointer & (nuint)(_memoryAlignment - 1)) == 0;
}
