using Blockshot.Core.Extents;
using Blockshot.Qcow2.Format;

namespace Blockshot.Qcow2.Internal;

/// <summary>
/// One persistent dirty bitmap in memory: its directory entry, the table it was loaded from and, once
/// loaded, its bits (bit n covers bytes [n·g, (n+1)·g), packed least significant bit first as on disk).
/// Bits are guarded by the object's own monitor (writers mark them concurrently); everything else by
/// the image's metadata lock.
/// </summary>
internal sealed class BitmapState
{
    public BitmapState(BitmapDirectoryEntry entry, ulong[] table, long size)
    {
        Entry = entry;
        DiskTable = table;
        Size = size;
    }

    public BitmapDirectoryEntry Entry { get; }

    /// <summary>The table as stored (empty for a bitmap never stored).</summary>
    public ulong[] DiskTable { get; set; }

    /// <summary>Where the stored table lives (0 for a bitmap never stored).</summary>
    public long DiskTableOffset { get; set; }

    public byte[]? Bits { get; set; }

    /// <summary>Found in use when opened (not saved cleanly) or otherwise unusable: only removal is allowed.</summary>
    public bool Inconsistent { get; set; }

    /// <summary>The bits differ from what is stored.</summary>
    public bool Modified { get; set; }

    public long Size { get; set; }

    public string Name => Entry.Name;

    public int GranularityBits => Entry.GranularityBits;

    public long Granularity => 1L << Entry.GranularityBits;

    public bool Enabled => (Entry.Flags & BitmapFlags.Auto) != 0;

    public long BitCount => (Size + Granularity - 1) >> GranularityBits;

    public long DataBytes => (BitCount + 7) / 8;

    /// <summary>Sets the bits covering <c>[offset, offset + length)</c>.</summary>
    public void SetRange(long offset, long length)
    {
        if (length <= 0 || Bits is null)
        {
            return;
        }
        var first = offset >> GranularityBits;
        var last = Math.Min((offset + length - 1) >> GranularityBits, BitCount - 1);
        lock (this)
        {
            var bits = Bits;
            for (var n = first; n <= last;)
            {
                if ((n & 7) == 0 && last - n >= 7)
                {
                    var bytes = (int)((last - n + 1) / 8);
                    bits.AsSpan((int)(n >> 3), bytes).Fill(0xff);
                    n += bytes * 8L;
                    continue;
                }
                bits[n >> 3] |= (byte)(1 << (int)(n & 7));
                n++;
            }
            Modified = true;
        }
    }

    public bool Get(long bit) => Bits is not null && (Bits[bit >> 3] & (1 << (int)(bit & 7))) != 0;

    /// <summary>Clears every bit.</summary>
    public void Clear()
    {
        lock (this)
        {
            Bits?.AsSpan().Clear();
            Modified = true;
        }
    }

    /// <summary>Adds every set bit of <paramref name="other"/> (any granularity).</summary>
    public void Merge(BitmapState other)
    {
        if (other.Bits is null || Bits is null)
        {
            return;
        }
        if (other.GranularityBits == GranularityBits)
        {
            lock (this)
            {
                var n = Math.Min(Bits.Length, other.Bits.Length);
                for (var i = 0; i < n; i++)
                {
                    Bits[i] |= other.Bits[i];
                }
                Modified = true;
            }
            return;
        }
        for (long bit = 0; bit < other.BitCount; bit++)
        {
            if (other.Get(bit))
            {
                SetRange(bit << other.GranularityBits, other.Granularity);
            }
        }
    }

    /// <summary>Changes the covered size, keeping bits that remain inside.</summary>
    public void Resize(long size)
    {
        lock (this)
        {
            Size = size;
            if (Bits is not null)
            {
                var bits = Bits;
                Array.Resize(ref bits, (int)DataBytes);
                var tailBits = (int)(BitCount & 7);
                if (tailBits != 0 && bits.Length > 0)
                {
                    bits[^1] &= (byte)((1 << tailBits) - 1);
                }
                Bits = bits;
            }
            Modified = true;
        }
    }

    /// <summary>Appends dirty (1) and clean (0) runs for <c>[offset, offset + length)</c>.</summary>
    public void Query(long offset, long length, ExtentList extents)
    {
        var end = offset + length;
        var pos = offset;
        while (pos < end && !extents.IsFull)
        {
            var bit = pos >> GranularityBits;
            var dirty = bit < BitCount && Get(bit);
            var next = Math.Min(end, (bit + 1) << GranularityBits);
            extents.Add(next - pos, dirty ? 1u : 0u);
            pos = next;
        }
    }
}
