using System.Collections.Concurrent;
using Blockshot.Core;
using Blockshot.Core.Extents;
using Blockshot.Fuse.Native;
using Blockshot.Fuse.Protocol;

namespace Blockshot.Fuse.FileSystem;

/// <summary>SETATTR (truncate resizes), FALLOCATE (punch and zero) and LSEEK (SEEK_DATA, SEEK_HOLE).</summary>
internal sealed partial class BlockFileSystem
{
    // Runs per extent query while seeking; more are fetched as needed.
    private const int SeekRunsPerQuery = 1024;

    private readonly ConcurrentQueue<ExtentList> _extentLists = new();

    public override async ValueTask<int> SetAttrAsync(FuseRequest request, FuseSetAttrIn input)
    {
        if (request.Header.NodeId != RootId)
        {
            return -Errno.ENOENT;
        }
        var valid = input.Valid;
        if ((valid & SetAttrValid.Size) != 0 && (long)input.Size != _node.Size)
        {
            if (_readOnly)
            {
                _counters.Failed();
                return -Errno.EROFS;
            }
            if ((long)input.Size < 0)
            {
                _counters.Failed();
                return -Errno.EINVAL;
            }
            // A node that cannot change size refuses with NotSupported, reported as EOPNOTSUPP.
            await _node.ResizeAsync((long)input.Size).ConfigureAwait(false);
            _counters.Resized();
        }
        var now = DateTime.UtcNow.Ticks;
        lock (_attrLock)
        {
            if ((valid & SetAttrValid.Mode) != 0)
            {
                _mode = input.Mode & 0xFFF; // permission bits; the file stays a regular file
            }
            if ((valid & SetAttrValid.KillSuidGid) != 0)
            {
                _mode &= ~SuidSgid;
            }
            if ((valid & SetAttrValid.Uid) != 0)
            {
                _uid = input.Uid;
            }
            if ((valid & SetAttrValid.Gid) != 0)
            {
                _gid = input.Gid;
            }
            if ((valid & SetAttrValid.ATimeNow) != 0)
            {
                _atimeTicks = now;
            }
            else if ((valid & SetAttrValid.ATime) != 0)
            {
                _atimeTicks = TicksOf(input.ATime, input.ATimeNsec);
            }
            if ((valid & SetAttrValid.MTimeNow) != 0)
            {
                Volatile.Write(ref _mtimeTicks, now);
            }
            else if ((valid & SetAttrValid.MTime) != 0)
            {
                Volatile.Write(ref _mtimeTicks, TicksOf(input.MTime, input.MTimeNsec));
            }
            _ctimeTicks = (valid & SetAttrValid.CTime) != 0 ? TicksOf(input.CTime, input.CTimeNsec) : now;
        }
        WriteAttr(request.Reply);
        return FuseAttrOut.WireSize;
    }

    public override async ValueTask<int> FallocateAsync(FuseRequest request, FuseFallocateIn input)
    {
        var size = _node.Size;
        var offset = (long)input.Offset;
        var length = (long)input.Length;
        if (offset < 0 || length <= 0 || offset > long.MaxValue - length)
        {
            _counters.Failed();
            return -Errno.EINVAL;
        }
        if (_readOnly)
        {
            _counters.Failed();
            return -Errno.EROFS;
        }
        var keepSize = (input.Mode & FallocateMode.KeepSize) != 0;
        var end = offset + length;
        switch (input.Mode & ~FallocateMode.KeepSize)
        {
            case FallocateMode.PunchHole when keepSize:
                if (offset < size)
                {
                    await PunchAsync(offset, Math.Min(end, size) - offset).ConfigureAwait(false);
                    _counters.Trimmed();
                }
                return 0;

            case FallocateMode.ZeroRange:
            case FallocateMode.WriteZeroes:
                if (end > size && !keepSize)
                {
                    break; // would grow the file
                }
                if (offset < size)
                {
                    await _io.WriteZeroesAsync(offset, Math.Min(end, size) - offset, IoFlags.None).ConfigureAwait(false);
                    _counters.Zeroed();
                }
                return 0;

            case FallocateMode.Allocate:
                // Inside the device every byte already has storage behind it; growing is refused.
                if (end > size && !keepSize)
                {
                    break;
                }
                return 0;
        }
        _counters.Failed();
        return -Errno.EOPNOTSUPP; // size-changing, collapse, insert, unshare, no-hide-stale
    }

    public override async ValueTask<int> LseekAsync(FuseRequest request, FuseLseekIn input)
    {
        var size = _node.Size;
        var offset = (long)input.Offset;
        if (input.Whence != FuseLseekIn.SeekData && input.Whence != FuseLseekIn.SeekHole)
        {
            _counters.Failed();
            return -Errno.EINVAL;
        }
        if (offset < 0 || offset >= size)
        {
            return -Errno.ENXIO;
        }
        _counters.Sought();
        var found = await SeekAsync(offset, size, input.Whence == FuseLseekIn.SeekHole).ConfigureAwait(false);
        if (found < 0)
        {
            return -Errno.ENXIO; // no data at or after the offset
        }
        new FuseLseekOut((ulong)found).Write(request.Reply);
        return FuseLseekOut.WireSize;
    }

    /// <summary>
    /// A punched hole must read back as zeros, but a trim only hints that the content is no longer
    /// needed. So the range is trimmed, then any part the node does not report as reading zero is
    /// zeroed (allowing deallocation). A node without real extents is zeroed directly.
    /// </summary>
    private async ValueTask PunchAsync(long offset, long length)
    {
        if (!_node.Capabilities.Has(NodeFeatures.Extents))
        {
            await _io.WriteZeroesAsync(offset, length, IoFlags.MayTrim).ConfigureAwait(false);
            return;
        }
        await _io.TrimAsync(offset, length, IoFlags.None).ConfigureAwait(false);
        var list = RentList();
        try
        {
            var pos = offset;
            var end = offset + length;
            while (pos < end)
            {
                list.Reset(pos, end - pos, SeekRunsPerQuery);
                await _node.GetExtentsAsync(pos, end - pos, list).ConfigureAwait(false);
                if (list.Count == 0)
                {
                    await _io.WriteZeroesAsync(pos, end - pos, IoFlags.MayTrim).ConfigureAwait(false);
                    break;
                }
                for (var i = 0; i < list.Count; i++)
                {
                    var run = list[i];
                    if ((run.Flags & AllocationFlags.Zero) == 0)
                    {
                        await _io.WriteZeroesAsync(run.Offset, run.Length, IoFlags.MayTrim).ConfigureAwait(false);
                    }
                }
                pos = list.End;
            }
        }
        finally
        {
            _extentLists.Enqueue(list);
        }
    }

    /// <summary>
    /// The first offset at or after <paramref name="offset"/> that is a hole (<paramref name="hole"/>) or
    /// data; -1 when there is no data after it. A hole is a run the node reports as reading zero; the end
    /// of the device counts as a hole. A node without real extents is all data.
    /// </summary>
    private async ValueTask<long> SeekAsync(long offset, long size, bool hole)
    {
        if (!_node.Capabilities.Has(NodeFeatures.Extents))
        {
            return hole ? size : offset;
        }
        var list = RentList();
        try
        {
            var pos = offset;
            while (pos < size)
            {
                list.Reset(pos, size - pos, SeekRunsPerQuery);
                await _node.GetExtentsAsync(pos, size - pos, list).ConfigureAwait(false);
                if (list.Count == 0)
                {
                    return hole ? size : pos; // the node said nothing: treat the rest as data
                }
                for (var i = 0; i < list.Count; i++)
                {
                    var run = list[i];
                    if (((run.Flags & AllocationFlags.Zero) != 0) == hole)
                    {
                        return Math.Max(run.Offset, pos);
                    }
                }
                pos = list.End;
            }
            return hole ? size : -1;
        }
        finally
        {
            _extentLists.Enqueue(list);
        }
    }

    private ExtentList RentList() => _extentLists.TryDequeue(out var list) ? list : new ExtentList(SeekRunsPerQuery);
}
