using System.Runtime.CompilerServices;
using Blockshot.Core;
using Blockshot.Fuse.Native;
using Blockshot.Fuse.Protocol;

namespace Blockshot.Fuse.FileSystem;

/// <summary>READ, WRITE, FLUSH and FSYNC: the hot path. Data is read into and written from the request buffer.</summary>
internal sealed partial class BlockFileSystem
{
    private const uint ODsync = 0x1000; // O_DSYNC (also part of O_SYNC)

    public override ValueTask<int> ReadAsync(FuseRequest request, FuseReadIn input)
    {
        var size = _node.Size;
        var offset = (long)input.Offset;
        if (offset < 0 || input.Size > request.ReplyCapacity)
        {
            return Refuse(Errno.EINVAL);
        }
        if (offset >= size || input.Size == 0)
        {
            return new(0); // end of file
        }
        var length = (int)Math.Min(input.Size, size - offset);
        var pending = _io.ReadAsync(offset, request.ReplyMemory(length));
        if (pending.IsCompletedSuccessfully)
        {
            _counters.Read(length);
            return new(length);
        }
        return AwaitRead(pending, length);
    }

    public override ValueTask<int> WriteAsync(FuseRequest request, FuseWriteIn input)
    {
        if (_readOnly)
        {
            return Refuse(Errno.EROFS);
        }
        var size = _node.Size;
        var offset = (long)input.Offset;
        if (offset < 0 || input.Size > request.ArgsLength - FuseWriteIn.WireSize)
        {
            return Refuse(Errno.EINVAL);
        }
        if (input.Size == 0)
        {
            return Written(request, 0);
        }
        if (offset >= size)
        {
            return Refuse(Errno.ENOSPC); // a device does not grow by writing past its end
        }
        // A write crossing the end is cut short there, as on a block device.
        var length = (int)Math.Min(input.Size, size - offset);
        var flags = (input.Flags & ODsync) != 0 ? IoFlags.Fua : IoFlags.None;
        if (flags == IoFlags.Fua && !_node.Capabilities.Has(NodeFeatures.Fua))
        {
            return WriteThenFlushAsync(request, offset, length);
        }
        var pending = _io.WriteAsync(offset, request.ArgsMemory(FuseWriteIn.WireSize, length), flags);
        if (pending.IsCompletedSuccessfully)
        {
            return Written(request, length);
        }
        return AwaitWrite(pending, request, length);
    }

    public override ValueTask<int> FlushAsync(FuseRequest request, FuseFlushIn input) =>
        // Sent on every close(2): flush the node only if this export wrote since the last flush.
        Interlocked.Exchange(ref _dirty, 0) != 0 ? FlushNodeAsync() : new(0);

    public override ValueTask<int> FsyncAsync(FuseRequest request, FuseFsyncIn input)
    {
        Volatile.Write(ref _dirty, 0);
        return FlushNodeAsync();
    }

    private ValueTask<int> Written(FuseRequest request, int length)
    {
        if (length > 0)
        {
            Volatile.Write(ref _dirty, 1);
            Volatile.Write(ref _mtimeTicks, DateTime.UtcNow.Ticks);
            _counters.Wrote(length);
        }
        new FuseWriteOut((uint)length).Write(request.Reply);
        return new(FuseWriteOut.WireSize);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> AwaitRead(ValueTask pending, int length)
    {
        await pending.ConfigureAwait(false);
        _counters.Read(length);
        return length;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> AwaitWrite(ValueTask pending, FuseRequest request, int length)
    {
        await pending.ConfigureAwait(false);
        return await Written(request, length).ConfigureAwait(false);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> WriteThenFlushAsync(FuseRequest request, long offset, int length)
    {
        await _io.WriteAsync(offset, request.ArgsMemory(FuseWriteIn.WireSize, length), IoFlags.None).ConfigureAwait(false);
        await _node.FlushAsync().ConfigureAwait(false);
        _counters.Flushed();
        return await Written(request, length).ConfigureAwait(false);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> FlushNodeAsync()
    {
        await _node.FlushAsync().ConfigureAwait(false);
        _counters.Flushed();
        return 0;
    }
}
