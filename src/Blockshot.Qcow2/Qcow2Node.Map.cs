using Blockshot.Core;
using Blockshot.Core.Extents;
using Blockshot.Qcow2.Format;

namespace Blockshot.Qcow2;

public sealed partial class Qcow2Node
{
    /// <summary>
    /// Maps <c>[offset, offset + length)</c> (the whole disk by default) through the backing chain:
    /// which layer holds each run, whether it is data or zeros, and where data lies on the host.
    /// </summary>
    public async ValueTask<IReadOnlyList<Qcow2MapEntry>> MapAsync(long offset = 0, long length = -1)
    {
        if (length < 0)
        {
            length = Size - offset;
        }
        RequestValidator.CheckRange(offset, length, Size);
        var list = new List<Qcow2MapEntry>();
        await MapIntoAsync(list, offset, offset + length, 0).ConfigureAwait(false);
        return list;
    }

    private async ValueTask MapIntoAsync(List<Qcow2MapEntry> list, long pos, long end, int depth)
    {
        while (pos < end)
        {
            var run = await LookupLockedAsync(pos, end).ConfigureAwait(false);
            switch (run.Kind)
            {
                case RunKind.Data:
                    Add(list, new Qcow2MapEntry(pos, run.Length, depth, true, false, true, run.Host, false, DataTarget.Path));
                    break;
                case RunKind.Compressed:
                    Add(list, new Qcow2MapEntry(pos, run.Length, depth, true, false, true, null, true, _file.Path));
                    break;
                case RunKind.Zero:
                    Add(list, new Qcow2MapEntry(pos, run.Length, depth, true, true, false, null, false, null));
                    break;
                default:
                    await MapBackingAsync(list, pos, pos + run.Length, depth).ConfigureAwait(false);
                    break;
            }
            pos += run.Length;
        }
    }

    private async ValueTask MapBackingAsync(List<Qcow2MapEntry> list, long pos, long end, int depth)
    {
        switch (_backing)
        {
            case null:
                Add(list, new Qcow2MapEntry(pos, end - pos, depth, false, true, false, null, false, null));
                return;
            case Qcow2Node q:
                {
                    var inside = Math.Clamp(q.Size - pos, 0, end - pos);
                    if (inside > 0)
                    {
                        await q.MapIntoAsync(list, pos, pos + inside, depth + 1).ConfigureAwait(false);
                    }
                    if (pos + inside < end)
                    {
                        Add(list, new Qcow2MapEntry(pos + inside, end - pos - inside, depth, false, true, false, null, false, null)); // past the backing file: zeros decided here
                    }
                    return;
                }
            default:
                {
                    var backing = _backing;
                    var inside = Math.Clamp(backing.Size - pos, 0, end - pos);
                    if (inside > 0)
                    {
                        var extents = new ExtentList();
                        var p = pos;
                        while (p < pos + inside)
                        {
                            extents.Reset(p, pos + inside - p);
                            await backing.GetExtentsAsync(p, pos + inside - p, extents).ConfigureAwait(false);
                            foreach (var e in extents.Items)
                            {
                                var zero = (e.Flags & AllocationFlags.Zero) != 0;
                                var data = (e.Flags & AllocationFlags.Hole) == 0;
                                // A raw file maps guest offsets to the same file offsets, holes included.
                                var file = backing is Blockshot.Drivers.RawFileNode raw ? raw.Path : null;
                                Add(list, new Qcow2MapEntry(e.Offset, e.Length, depth + 1, data || zero, zero, data, data || file is not null ? e.Offset : null, false, data ? file : null));
                            }
                            p = extents.End > p ? extents.End : pos + inside;
                        }
                    }
                    if (pos + inside < end)
                    {
                        Add(list, new Qcow2MapEntry(pos + inside, end - pos - inside, depth, false, true, false, null, false, null)); // past the backing file: zeros decided here
                    }
                    return;
                }
        }
    }

    private static void Add(List<Qcow2MapEntry> list, Qcow2MapEntry e)
    {
        if (list.Count > 0)
        {
            var last = list[^1];
            if (last.Start + last.Length == e.Start && last.Depth == e.Depth && last.Present == e.Present && last.Zero == e.Zero
                && last.Data == e.Data && last.Compressed == e.Compressed && last.File == e.File
                && (last.Offset is null ? e.Offset is null : e.Offset == last.Offset + last.Length))
            {
                list[^1] = last with { Length = last.Length + e.Length };
                return;
            }
        }
        list.Add(e);
    }

    /// <summary>
    /// Describes where each run is allocated: 1 in this image, n in the (n−1)-th backing image, 0 nowhere
    /// (the qemu:allocation-depth context). Commit, rebase and incremental copies use depth 1.
    /// </summary>
    public ValueTask GetAllocationDepthAsync(long offset, long length, ExtentList extents)
    {
        RequestValidator.CheckRange(offset, length, Size);
        return QueryAllocationDepthAsync(offset, length, extents, 1);
    }

    /// <summary>The image's information, as the info command reports it.</summary>
    public Qcow2ImageInfo GetInfo()
    {
        var h = _hc.Header;
        string? full = null;
        if (_hc.BackingFile is { Length: > 0 } b)
        {
            full = System.IO.Path.IsPathRooted(b) ? b : System.IO.Path.Combine(System.IO.Path.GetDirectoryName(Path) ?? "", b);
        }
        return new Qcow2ImageInfo
        {
            Filename = Path,
            VirtualSize = Size,
            ActualSize = Internal.Native.AllocatedBytes(Path),
            ClusterSize = _g.ClusterSize,
            Compat = h.Version >= 3 ? "1.1" : "0.10",
            CompressionType = h.CompressionType == CompressionType.Zstd ? "zstd" : "zlib",
            LazyRefcounts = (h.Compatible & CompatibleFeatures.LazyRefcounts) != 0,
            RefcountBits = 1 << (int)h.RefcountOrder,
            Corrupt = (h.Incompatible & IncompatibleFeatures.Corrupt) != 0,
            ExtendedL2 = _g.ExtendedL2,
            DataFile = (h.Incompatible & IncompatibleFeatures.ExternalDataFile) != 0 ? _hc.DataFile : null,
            DataFileRaw = DataFileRaw,
            DirtyFlag = (h.Incompatible & IncompatibleFeatures.Dirty) != 0,
            BackingFilename = _hc.BackingFile,
            FullBackingFilename = full,
            BackingFilenameFormat = _hc.BackingFormat,
            Bitmaps = Bitmaps,
            Snapshots = Snapshots,
        };
    }
}
