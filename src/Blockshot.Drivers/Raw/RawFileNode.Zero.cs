using System.Runtime.CompilerServices;
using Blockshot.Core;
using Blockshot.Drivers.Raw;

namespace Blockshot.Drivers;

// Write-zeroes and trim.
//
// Files: write-zeroes is fallocate(ZERO_RANGE), or PUNCH_HOLE when the caller allows deallocation
// (MayTrim); the filesystem handles partial blocks. When it refuses (EOPNOTSUPP, e.g. ZERO_RANGE on
// tmpfs) zeros are written instead, unless the request is FastZero, which then fails NotSupported
// before anything is changed. Trim is PUNCH_HOLE, so trimmed ranges read back as zeros.
//
// Block devices: the kernel wants logical-block alignment, so the aligned body goes to fallocate
// (PUNCH_HOLE = zero-out that may unmap, ZERO_RANGE = zero-out that keeps blocks, both with in-kernel
// page-cache invalidation), then BLKZEROOUT, then written zeros; the unaligned head and tail are
// written as zeros. FastZero is refused up front unless the queue offloads write-zeroes. Trim is
// BLKDISCARD of the aligned part, skipped when the device cannot discard (trim is only a hint).
public sealed partial class RawFileNode
{
    /// <inheritdoc/>
    public override ValueTask WriteZeroesAsync(long offset, long length, IoFlags flags)
    {
        if (_readOnly)
        {
            return ReadOnlyFailure("write-zeroes");
        }
        return _isBlockDevice ? ZeroDeviceAsync(offset, length, flags) : ZeroFileAsync(offset, length, flags);
    }

    /// <inheritdoc/>
    public override ValueTask TrimAsync(long offset, long length, IoFlags flags)
    {
        if (_readOnly)
        {
            return ReadOnlyFailure("trim");
        }
        return _isBlockDevice ? DiscardAsync(offset, length, flags) : PunchAsync(offset, length, flags);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ZeroFileAsync(long offset, long length, IoFlags flags)
    {
        var r = await OffloadZeroAsync(offset, length, (flags & IoFlags.MayTrim) != 0).ConfigureAwait(false);
        if (r == -Libc.EOPNOTSUPP)
        {
            if ((flags & IoFlags.FastZero) != 0)
            {
                BlockThrow.NotSupported($"fast zeroing on {Path} (its filesystem cannot zero a range without writing it)");
            }
            await WriteZerosAsync(offset, length).ConfigureAwait(false);
        }
        else if (r < 0)
        {
            ThrowErrno(r, "write-zeroes", offset, length);
        }
        if ((flags & IoFlags.Fua) != 0)
        {
            await SyncAsync("sync after write-zeroes", offset, length).ConfigureAwait(false);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ZeroDeviceAsync(long offset, long length, IoFlags flags)
    {
        var fast = (flags & IoFlags.FastZero) != 0;
        if (fast && !_fastZero)
        {
            BlockThrow.NotSupported($"fast zeroing on {Path} (the device does not offload write-zeroes)");
        }
        var split = AlignedSplit.Of(offset, length, LogicalBlockSize);
        if (split.BodyLength > 0)
        {
            var r = await OffloadZeroAsync(split.BodyOffset, split.BodyLength, (flags & IoFlags.MayTrim) != 0).ConfigureAwait(false);
            if (r == -Libc.EOPNOTSUPP)
            {
                // BLKZEROOUT writes zeros in the kernel if the device has no better way.
                r = await RangeIoctlAsync(Libc.BlkZeroOut, split.BodyOffset, split.BodyLength).ConfigureAwait(false);
            }
            if (r == -Libc.EOPNOTSUPP)
            {
                if (fast)
                {
                    BlockThrow.NotSupported($"fast zeroing on {Path}");
                }
                await WriteZerosAsync(split.BodyOffset, split.BodyLength).ConfigureAwait(false);
            }
            else if (r < 0)
            {
                ThrowErrno(r, "write-zeroes", split.BodyOffset, split.BodyLength);
            }
        }
        if (split.HeadLength > 0)
        {
            await WriteZerosAsync(offset, split.HeadLength).ConfigureAwait(false);
        }
        if (split.TailLength > 0)
        {
            await WriteZerosAsync(split.TailOffset, split.TailLength).ConfigureAwait(false);
        }
        if ((flags & IoFlags.Fua) != 0)
        {
            await SyncAsync("sync after write-zeroes", offset, length).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Zeroes by fallocate: PUNCH_HOLE when allowed, else (or when refused) ZERO_RANGE. Returns 0, or
    /// -EOPNOTSUPP when neither works here, or another -errno.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<long> OffloadZeroAsync(long offset, long length, bool mayTrim)
    {
        long r = -Libc.EOPNOTSUPP;
        if (mayTrim && !_punchRefused)
        {
            r = await FallocateAsync(Libc.FallocPunchHole | Libc.FallocKeepSize, offset, length).ConfigureAwait(false);
            if (r == -Libc.EOPNOTSUPP)
            {
                _punchRefused = true;
            }
        }
        if (r == -Libc.EOPNOTSUPP && !_zeroRangeRefused)
        {
            r = await FallocateAsync(Libc.FallocZeroRange | Libc.FallocKeepSize, offset, length).ConfigureAwait(false);
            if (r == -Libc.EOPNOTSUPP)
            {
                _zeroRangeRefused = true;
            }
        }
        return r;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask PunchAsync(long offset, long length, IoFlags flags)
    {
        if (!_punchRefused)
        {
            var r = await FallocateAsync(Libc.FallocPunchHole | Libc.FallocKeepSize, offset, length).ConfigureAwait(false);
            if (r == -Libc.EOPNOTSUPP)
            {
                _punchRefused = true; // Trim is a hint: a filesystem that cannot punch keeps the data.
            }
            else if (r < 0)
            {
                ThrowErrno(r, "trim", offset, length);
            }
        }
        if ((flags & IoFlags.Fua) != 0)
        {
            await SyncAsync("sync after trim", offset, length).ConfigureAwait(false);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask DiscardAsync(long offset, long length, IoFlags flags)
    {
        var start = Align.Up(offset, LogicalBlockSize);
        var end = Align.Down(offset + length, LogicalBlockSize);
        if (!_discardRefused && end > start)
        {
            var r = await RangeIoctlAsync(Libc.BlkDiscard, start, end - start).ConfigureAwait(false);
            if (r == -Libc.EOPNOTSUPP)
            {
                _discardRefused = true;
            }
            else if (r < 0)
            {
                ThrowErrno(r, "trim", start, end - start);
            }
        }
        if ((flags & IoFlags.Fua) != 0)
        {
            await SyncAsync("sync after trim", offset, length).ConfigureAwait(false);
        }
    }

    /// <summary>fallocate(<paramref name="mode"/>) under <see cref="_rmwLock"/>; returns 0 or -errno.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<long> FallocateAsync(int mode, long offset, long length)
    {
        using var held = await LockForWriteAsync(offset, length).ConfigureAwait(false);
        return await SyscallOp.Fallocate(_handle, mode, offset, length).ConfigureAwait(false);
    }

    /// <summary>A block-device range ioctl (BLKDISCARD, BLKZEROOUT) under <see cref="_rmwLock"/>; returns 0 or -errno.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<long> RangeIoctlAsync(nuint request, long offset, long length)
    {
        using var held = await LockForWriteAsync(offset, length).ConfigureAwait(false);
        return await SyscallOp.RangeIoctl(_handle, request, offset, length).ConfigureAwait(false);
    }

    /// <summary>Zeroes by writing a zeroed pooled buffer (aligned, so O_DIRECT can use it as it is).</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteZerosAsync(long offset, long length)
    {
        using var zeros = _pool.Rent((int)Math.Min(length, BounceSize));
        zeros.Span.Clear();
        var end = offset + length;
        while (offset < end)
        {
            var n = (int)Math.Min(end - offset, zeros.Length);
            var boundary = Align.Down(offset + n, _alignment);
            if (offset + n < end && boundary > offset)
            {
                // Stop on a block boundary, so only the first and last pieces need read-modify-write.
                n = (int)(boundary - offset);
            }
            var piece = zeros.Memory[..n];
            if (_direct)
            {
                await WriteDirectAsync(offset, piece, fua: false).ConfigureAwait(false);
            }
            else
            {
                await WriteAtAsync(offset, piece, fua: false).ConfigureAwait(false);
            }
            offset += n;
        }
    }
}
