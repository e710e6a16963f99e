using System.Buffers.Binary;
using System.Text;

namespace Blockshot.Qcow2.Format;

/// <summary>Flags of a bitmap directory entry.</summary>
[Flags]
public enum BitmapFlags : uint
{
    /// <summary>No flag.</summary>
    None = 0,

    /// <summary>The bitmap was not saved cleanly and may be inconsistent.</summary>
    InUse = 1,

    /// <summary>The bitmap is enabled: every write must be recorded in it.</summary>
    Auto = 2,

    /// <summary>Unknown extra data may be kept and the bitmap still used.</summary>
    ExtraDataCompatible = 4,

    /// <summary>Every flag this implementation knows.</summary>
    Known = InUse | Auto | ExtraDataCompatible,
}

/// <summary>
/// One bitmap directory entry: {table offset u64, table size u32, flags u32, type u8, granularity bits
/// u8, name size u16, extra size u32}, extra data, name, padded to 8 bytes with zeros.
/// </summary>
public sealed class BitmapDirectoryEntry
{
    private const int FixedLength = 24;

    /// <summary>The only bitmap type: dirty tracking.</summary>
    public const byte DirtyTrackingType = 1;

    /// <summary>Offset of the bitmap table.</summary>
    public ulong TableOffset { get; set; }

    /// <summary>Entries in the bitmap table.</summary>
    public uint TableSize { get; set; }

    /// <summary>Flags.</summary>
    public BitmapFlags Flags { get; set; }

    /// <summary>Bitmap type (1 = dirty tracking).</summary>
    public byte Type { get; set; } = DirtyTrackingType;

    /// <summary>log2 of the bytes of disk one bit covers.</summary>
    public byte GranularityBits { get; set; } = 16;

    /// <summary>The bitmap name.</summary>
    public string Name { get; set; } = "";

    /// <summary>Type-specific extra data, kept as stored.</summary>
    public byte[] ExtraData { get; set; } = [];

    /// <summary>Bytes this entry takes on disk, padding included.</summary>
    public int SerializedLength => (FixedLength + ExtraData.Length + Encoding.UTF8.GetByteCount(Name) + 7) & ~7;

    /// <summary>Parses one entry; <paramref name="consumed"/> is its padded length.</summary>
    public static BitmapDirectoryEntry Parse(ReadOnlySpan<byte> data, out int consumed)
    {
        if (data.Length < FixedLength)
        {
            Qcow2Error.Invalid("bitmap directory entry truncated");
        }
        var nameSize = BinaryPrimitives.ReadUInt16BigEndian(data[18..]);
        var extraSize = BinaryPrimitives.ReadUInt32BigEndian(data[20..]);
        if (extraSize > (uint)data.Length || FixedLength + (long)extraSize + nameSize > data.Length)
        {
            Qcow2Error.Invalid("bitmap directory entry truncated");
        }
        var entry = new BitmapDirectoryEntry
        {
            TableOffset = BinaryPrimitives.ReadUInt64BigEndian(data),
            TableSize = BinaryPrimitives.ReadUInt32BigEndian(data[8..]),
            Flags = (BitmapFlags)BinaryPrimitives.ReadUInt32BigEndian(data[12..]),
            Type = data[16],
            GranularityBits = data[17],
        };
        var pos = FixedLength;
        entry.ExtraData = data.Slice(pos, (int)extraSize).ToArray();
        pos += (int)extraSize;
        entry.Name = Encoding.UTF8.GetString(data.Slice(pos, nameSize));
        pos += nameSize;
        consumed = Math.Min((pos + 7) & ~7, data.Length);
        return entry;
    }

    /// <summary>Writes the entry; returns its padded length.</summary>
    public int WriteTo(Span<byte> data)
    {
        var length = SerializedLength;
        data[..length].Clear();
        var nameBytes = Encoding.UTF8.GetBytes(Name);
        BinaryPrimitives.WriteUInt64BigEndian(data, TableOffset);
        BinaryPrimitives.WriteUInt32BigEndian(data[8..], TableSize);
        BinaryPrimitives.WriteUInt32BigEndian(data[12..], (uint)Flags);
        data[16] = Type;
        data[17] = GranularityBits;
        BinaryPrimitives.WriteUInt16BigEndian(data[18..], checked((ushort)nameBytes.Length));
        BinaryPrimitives.WriteUInt32BigEndian(data[20..], (uint)ExtraData.Length);
        ExtraData.CopyTo(data[FixedLength..]);
        nameBytes.CopyTo(data[(FixedLength + ExtraData.Length)..]);
        return length;
    }

    /// <summary>A deep copy.</summary>
    public BitmapDirectoryEntry Clone()
    {
        var copy = (BitmapDirectoryEntry)MemberwiseClone();
        copy.ExtraData = (byte[])ExtraData.Clone();
        return copy;
    }
}
