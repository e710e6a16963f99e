using System.Runtime.CompilerServices;
using Blockshot.Core;
using Blockshot.Core.Extents;
using Blockshot.Drivers.Raw;

namespace Blockshot.Drivers;

// Extents, flush and resize.
public sealed partial class RawFileNode
{
    /// <summary>
    /// Files: data and holes from lseek(SEEK_DATA/SEEK_HOLE); holes read as zeros. Block devices do not
    /// say what is allocated, so everything is reported as data.
    /// </summary>
    public override ValueTask GetExtentsAsync(long offset, long length, ExtentList extents)
    {
        if (_isBlockDevice)
        {
            extents.Add(length, AllocationFlags.Data);
            return default;
        }
        return WalkExtentsAsync(offset, length, extents);
    }

    /// <summary>fdatasync: every completed write is durable when this returns.</summary>
    public override ValueTask FlushAsync() => SyncAsync("flush", 0, 0);

    /// <summary>Changes the size of a regular file (ftruncate); block devices and read-only nodes refuse.</summary>
    public override ValueTask ResizeAsync(long newSize)
    {
        if (_readOnly)
        {
            return ReadOnlyFailure("resize");
        }
        if (_isBlockDevice)
        {
            return ValueTask.FromException(new BlockException(BlockError.NotSupported, $"{Path} is a block device and cannot be resized"));
        }
        if (newSize < 0)
        {
            return ValueTask.FromException(new BlockException(BlockError.Invalid, $"cannot resize {Path} to {newSize} bytes"));
        }
        return TruncateAsync(newSize);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WalkExtentsAsync(long offset, long length, ExtentList extents)
    {
        var r = await SyscallOp.Extents(_handle, offset, length, extents).ConfigureAwait(false);
        if (r < 0)
        {
            ThrowErrno(r, "extent query", offset, length);
        }
    }

    private async ValueTask TruncateAsync(long newSize)
    {
        // O_DIRECT: exclude every write, so a read-modify-write of an odd-sized file's last block
        // cannot cut the file back to the old size after this resize.
        using var held = _direct ? await _rmwLock.AcquireAsync(0, long.MaxValue).ConfigureAwait(false) : default;
        var r = await SyscallOp.Truncate(_handle, newSize).ConfigureAwait(false);
        if (r < 0)
        {
            ThrowErrno(r, $"resize to {newSize} bytes", 0, 0);
        }
        Volatile.Write(ref _size, newSize);
    }
}
