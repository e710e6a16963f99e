using System.Text;
using Blockshot.Core;
using Blockshot.Core.Extents;
using Blockshot.Qcow2.Format;
using Blockshot.Qcow2.Internal;

namespace Blockshot.Qcow2;

// Bitmap operations: add, remove, enable, clear, merge, query, and the status context.
public sealed partial class Qcow2Node
{
    private readonly List<(long Offset, long Length)> _removedBitmapStorage = [];

    private BitmapState FindBitmap(string name) =>
        Array.Find(_bitmaps, b => b.Name == name)
        ?? throw new BlockException(BlockError.Invalid, $"qcow2: bitmap '{name}' not found");

    private static void CheckUsable(BitmapState b)
    {
        if (b.Inconsistent)
        {
            Qcow2Error.Refused($"Bitmap '{b.Name}' is inconsistent and cannot be used; remove it");
        }
    }

    /// <summary>
    /// Adds a persistent bitmap, empty, recording writes from now on when <paramref name="enabled"/>.
    /// Granularity defaults to the cluster size, clamped to 4 KiB–64 KiB.
    /// </summary>
    public async ValueTask AddBitmapAsync(string name, long granularity = 0, bool enabled = true)
    {
        CheckWritable();
        if (!IsV3)
        {
            Qcow2Error.Unsupported("persistent bitmaps need a version 3 image");
        }
        if (granularity == 0)
        {
            granularity = Math.Clamp(_g.ClusterSize, 4096, 65536);
        }
        var bits = System.Numerics.BitOperations.Log2((ulong)granularity);
        if (granularity <= 0 || (1L << bits) != granularity || bits < Qcow2Constants.MinBitmapGranularityBits || bits > Qcow2Constants.MaxBitmapGranularityBits)
        {
            Qcow2Error.Argument($"bitmap granularity must be a power of two between 512 and 2^31 (got {granularity})");
        }
        if (string.IsNullOrEmpty(name) || Encoding.UTF8.GetByteCount(name) > Qcow2Constants.MaxBitmapNameBytes)
        {
            Qcow2Error.Argument("bitmap name must be 1 to 1023 bytes long");
        }
        using (await _ranges.AcquireAsync(0, long.MaxValue).ConfigureAwait(false))
        {
            await _meta.WaitAsync().ConfigureAwait(false);
            try
            {
                if (Array.Exists(_bitmaps, b => b.Name == name))
                {
                    Qcow2Error.Argument($"Bitmap already exists: {name}");
                }
                if (_bitmaps.Length >= Qcow2Constants.MaxBitmaps)
                {
                    Qcow2Error.Argument("too many bitmaps");
                }
                var entry = new BitmapDirectoryEntry
                {
                    Name = name,
                    GranularityBits = (byte)bits,
                    Flags = (enabled ? BitmapFlags.Auto : BitmapFlags.None) | BitmapFlags.InUse,
                };
                var state = new BitmapState(entry, [], _size) { Modified = true };
                state.Bits = new byte[state.DataBytes];
                if (state.DataBytes > Qcow2Constants.MaxBitmapDataBytes)
                {
                    Qcow2Error.Argument("bitmap would be too large; use a coarser granularity");
                }
                _bitmaps = [.. _bitmaps, state];
                _bitmapsChanged = true;
                RebuildContexts();
            }
            finally
            {
                _meta.Release();
            }
        }
    }

    /// <summary>Removes a bitmap (the only operation allowed on an inconsistent one).</summary>
    public ValueTask RemoveBitmapAsync(string name) => BitmapOpAsync(name, allowInconsistent: true, b =>
    {
        if (b.DiskTableOffset != 0)
        {
            RegisterBitmapStorage(b, add: false);
            _removedBitmapStorage.Add((b.DiskTableOffset, (long)b.DiskTable.Length * 8));
            foreach (var t in b.DiskTable)
            {
                var o = (long)(t & BitmapTableEntry.OffsetMask);
                if (o != 0)
                {
                    _removedBitmapStorage.Add((o, _g.ClusterSize));
                }
            }
        }
        _bitmaps = Array.FindAll(_bitmaps, x => x != b);
        RebuildContexts();
    });

    /// <summary>Enables or disables recording of writes in a bitmap.</summary>
    public ValueTask SetBitmapEnabledAsync(string name, bool enabled) => BitmapOpAsync(name, allowInconsistent: false, b =>
    {
        b.Entry.Flags = enabled ? b.Entry.Flags | BitmapFlags.Auto : b.Entry.Flags & ~BitmapFlags.Auto;
        b.Modified = true;
    });

    /// <summary>Clears every bit of a bitmap.</summary>
    public ValueTask ClearBitmapAsync(string name) => BitmapOpAsync(name, allowInconsistent: false, b => b.Clear());

    /// <summary>Sets the bits of a bitmap that cover <paramref name="ranges"/> (byte offsets and lengths), as writes there would.</summary>
    public ValueTask MarkBitmapAsync(string name, IReadOnlyList<(long Offset, long Length)> ranges)
    {
        ArgumentNullException.ThrowIfNull(ranges);
        return BitmapOpAsync(name, allowInconsistent: false, b =>
        {
            foreach (var (offset, length) in ranges)
            {
                if (offset < 0 || length < 0 || offset > _size - length)
                {
                    Qcow2Error.Argument($"range {offset}:{length} is outside the image");
                }
                b.SetRange(offset, length);
            }
            b.Modified = true;
        });
    }

    /// <summary>Adds the bits of <paramref name="sources"/> to <paramref name="target"/>.</summary>
    public async ValueTask MergeBitmapsAsync(string target, IEnumerable<string> sources)
    {
        var names = sources.ToList();
        await BitmapOpAsync(target, allowInconsistent: false, async t =>
        {
            foreach (var name in names)
            {
                var s = FindBitmap(name);
                CheckUsable(s);
                await EnsureBitsAsync(s).ConfigureAwait(false);
                t.Merge(s);
            }
        }).ConfigureAwait(false);
    }

    /// <summary>Reads a bitmap's dirty ranges: runs with flag 1 (dirty) or 0 (clean).</summary>
    public async ValueTask QueryBitmapAsync(string name, long offset, long length, ExtentList extents)
    {
        await _meta.WaitAsync().ConfigureAwait(false);
        BitmapState b;
        try
        {
            b = FindBitmap(name);
            CheckUsable(b);
            await EnsureBitsAsync(b).ConfigureAwait(false);
        }
        finally
        {
            _meta.Release();
        }
        b.Query(offset, length, extents);
    }

    private ValueTask BitmapOpAsync(string name, bool allowInconsistent, Action<BitmapState> op) =>
        BitmapOpAsync(name, allowInconsistent, b =>
        {
            op(b);
            return default;
        });

    private async ValueTask BitmapOpAsync(string name, bool allowInconsistent, Func<BitmapState, ValueTask> op)
    {
        CheckWritable();
        using (await _ranges.AcquireAsync(0, long.MaxValue).ConfigureAwait(false))
        {
            await _meta.WaitAsync().ConfigureAwait(false);
            try
            {
                var b = FindBitmap(name);
                if (!allowInconsistent)
                {
                    CheckUsable(b);
                }
                await EnsureBitsAsync(b).ConfigureAwait(false);
                await op(b).ConfigureAwait(false);
                _bitmapsChanged = true;
            }
            finally
            {
                _meta.Release();
            }
        }
    }

    private void RebuildContexts()
    {
        var list = new List<BlockStatusContext> { _contexts[0] };
        foreach (var b in _bitmaps)
        {
            if (!b.Inconsistent)
            {
                list.Add(new DirtyBitmapContext(this, b.Name));
            }
        }
        _contextList = list;
    }

    private sealed class DirtyBitmapContext(Qcow2Node node, string name) : BlockStatusContext
    {
        public override string Name { get; } = "qemu:dirty-bitmap:" + name;

        public override ValueTask QueryAsync(long offset, long length, ExtentList extents) =>
            node.QueryBitmapAsync(name, offset, length, extents);
    }
}
