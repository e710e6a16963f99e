using System.Buffers.Binary;
using System.Text;

namespace Blockshot.Qcow2.Format;

/// <summary>
/// One snapshot table entry: 40 fixed bytes, extra data, the unique id and the name, padded to 8 bytes.
/// Extra data is kept raw (unknown fields survive a rewrite) with typed views of the known fields.
/// </summary>
public sealed class SnapshotEntry
{
    private const int FixedLength = 40;

    /// <summary>Offset of the snapshot's L1 table.</summary>
    public ulong L1TableOffset { get; set; }

    /// <summary>Entries in the snapshot's L1 table.</summary>
    public uint L1Size { get; set; }

    /// <summary>The unique id string (decimal numbers by convention).</summary>
    public string Id { get; set; } = "";

    /// <summary>The snapshot name.</summary>
    public string Name { get; set; } = "";

    /// <summary>Seconds since the epoch when the snapshot was taken.</summary>
    public uint DateSeconds { get; set; }

    /// <summary>Nanoseconds part of the date.</summary>
    public uint DateNanoseconds { get; set; }

    /// <summary>Guest run time in nanoseconds when the snapshot was taken.</summary>
    public ulong VmClockNanoseconds { get; set; }

    /// <summary>The 32-bit VM state size field.</summary>
    public uint VmStateSize32 { get; set; }

    /// <summary>Extra data as stored.</summary>
    public byte[] ExtraData { get; set; } = [];

    /// <summary>VM state size: the 64-bit extra field when present, else the 32-bit field.</summary>
    public ulong VmStateSize => ExtraData.Length >= 8 ? BinaryPrimitives.ReadUInt64BigEndian(ExtraData) : VmStateSize32;

    /// <summary>Virtual disk size when the snapshot was taken, if the extra data records it.</summary>
    public ulong? DiskSize => ExtraData.Length >= 16 ? BinaryPrimitives.ReadUInt64BigEndian(ExtraData.AsSpan(8)) : null;

    /// <summary>Instruction count of record/replay, if the extra data records it.</summary>
    public ulong? Icount => ExtraData.Length >= 24 ? BinaryPrimitives.ReadUInt64BigEndian(ExtraData.AsSpan(16)) : null;

    /// <summary>Builds the standard 24-byte extra data.</summary>
    public static byte[] StandardExtraData(ulong vmStateSize, ulong diskSize, ulong icount)
    {
        var extra = new byte[24];
        BinaryPrimitives.WriteUInt64BigEndian(extra, vmStateSize);
        BinaryPrimitives.WriteUInt64BigEndian(extra.AsSpan(8), diskSize);
        BinaryPrimitives.WriteUInt64BigEndian(extra.AsSpan(16), icount);
        return extra;
    }

    /// <summary>Bytes this entry takes on disk, padding included.</summary>
    public int SerializedLength =>
        (FixedLength + ExtraData.Length + Encoding.UTF8.GetByteCount(Id) + Encoding.UTF8.GetByteCount(Name) + 7) & ~7;

    /// <summary>Parses one entry; <paramref name="consumed"/> is its padded length.</summary>
    public static SnapshotEntry Parse(ReadOnlySpan<byte> data, out int consumed)
    {
        if (data.Length < FixedLength)
        {
            Qcow2Error.Invalid("snapshot table entry truncated");
        }
        var idSize = BinaryPrimitives.ReadUInt16BigEndian(data[12..]);
        var nameSize = BinaryPrimitives.ReadUInt16BigEndian(data[14..]);
        var extraSize = BinaryPrimitives.ReadUInt32BigEndian(data[36..]);
        if (extraSize > Qcow2Constants.MaxSnapshotExtraData)
        {
            Qcow2Error.Invalid($"too much extra metadata in snapshot table entry ({extraSize} bytes)");
        }
        var total = FixedLength + (int)extraSize + idSize + nameSize;
        if (total > data.Length)
        {
            Qcow2Error.Invalid("snapshot table entry truncated");
        }
        var entry = new SnapshotEntry
        {
            L1TableOffset = BinaryPrimitives.ReadUInt64BigEndian(data),
            L1Size = BinaryPrimitives.ReadUInt32BigEndian(data[8..]),
            DateSeconds = BinaryPrimitives.ReadUInt32BigEndian(data[16..]),
            DateNanoseconds = BinaryPrimitives.ReadUInt32BigEndian(data[20..]),
            VmClockNanoseconds = BinaryPrimitives.ReadUInt64BigEndian(data[24..]),
            VmStateSize32 = BinaryPrimitives.ReadUInt32BigEndian(data[32..]),
        };
        var pos = FixedLength;
        entry.ExtraData = data.Slice(pos, (int)extraSize).ToArray();
        pos += (int)extraSize;
        entry.Id = Encoding.UTF8.GetString(data.Slice(pos, idSize));
        pos += idSize;
        entry.Name = Encoding.UTF8.GetString(data.Slice(pos, nameSize));
        consumed = Math.Min((total + 7) & ~7, data.Length);
        return entry;
    }

    /// <summary>Writes the entry; returns its padded length.</summary>
    public int WriteTo(Span<byte> data)
    {
        var length = SerializedLength;
        data[..length].Clear();
        var idBytes = Encoding.UTF8.GetBytes(Id);
        var nameBytes = Encoding.UTF8.GetBytes(Name);
        BinaryPrimitives.WriteUInt64BigEndian(data, L1TableOffset);
        BinaryPrimitives.WriteUInt32BigEndian(data[8..], L1Size);
        BinaryPrimitives.WriteUInt16BigEndian(data[12..], checked((ushort)idBytes.Length));
        BinaryPrimitives.WriteUInt16BigEndian(data[14..], checked((ushort)nameBytes.Length));
        BinaryPrimitives.WriteUInt32BigEndian(data[16..], DateSeconds);
        BinaryPrimitives.WriteUInt32BigEndian(data[20..], DateNanoseconds);
        BinaryPrimitives.WriteUInt64BigEndian(data[24..], VmClockNanoseconds);
        BinaryPrimitives.WriteUInt32BigEndian(data[32..], VmStateSize32);
        BinaryPrimitives.WriteUInt32BigEndian(data[36..], (uint)ExtraData.Length);
        var pos = FixedLength;
        ExtraData.CopyTo(data[pos..]);
        pos += ExtraData.Length;
        idBytes.CopyTo(data[pos..]);
        pos += idBytes.Length;
        nameBytes.CopyTo(data[pos..]);
        return length;
    }

    /// <summary>A deep copy.</summary>
    public SnapshotEntry Clone()
    {
        var copy = (SnapshotEntry)MemberwiseClone();
        copy.ExtraData = (byte[])ExtraData.Clone();
        return copy;
    }
}
