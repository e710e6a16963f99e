using System.Buffers.Binary;
using System.Text;
using Blockshot.Core.Checksums;

namespace Blockshot.Snapshots.Persistence;

/// <summary>What a log record says.</summary>
internal enum LogRecordType : ushort
{
    Created = 1,
    Entry = 2,
    Removed = 3,
    Failed = 4,
}

/// <summary>
/// One record of the exception log: <c>[magic u32][type u16][payload length u16][sequence u64]
/// [payload][CRC-32C u32]</c>, padded to 8 bytes, little-endian. Sequence numbers rise by one, so
/// replay stops at the first record that is torn, stale or out of order.
/// </summary>
internal readonly record struct LogRecord(
    LogRecordType Type,
    long Snapshot,
    long Chunk = 0,
    uint Entry = 0,
    string? Text = null,
    long Ticks = 0,
    byte Policy = 0,
    byte AfterWait = 0,
    bool Writable = false,
    long WaitTicks = 0)
{
    public const uint Magic = 0x43525342; // "BSRC"
    private const int Head = 16;

    /// <summary>Serializes the record with sequence <paramref name="sequence"/>; returns the bytes.</summary>
    public byte[] Serialize(ulong sequence)
    {
        var text = Encoding.UTF8.GetBytes(Text ?? "");
        var payload = Type switch
        {
            LogRecordType.Created => 8 + 8 + 4 + 8 + 2 + text.Length,
            LogRecordType.Entry => 8 + 8 + 4,
            LogRecordType.Removed => 8,
            _ => 8 + 2 + text.Length,
        };
        var size = Align8(Head + payload + 4);
        var b = new byte[size];
        var s = b.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(s, Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(s[4..], (ushort)Type);
        BinaryPrimitives.WriteUInt16LittleEndian(s[6..], (ushort)payload);
        BinaryPrimitives.WriteUInt64LittleEndian(s[8..], sequence);
        var p = s[Head..];
        BinaryPrimitives.WriteInt64LittleEndian(p, Snapshot);
        switch (Type)
        {
            case LogRecordType.Created:
                BinaryPrimitives.WriteInt64LittleEndian(p[8..], Ticks);
                p[16] = Policy;
                p[17] = AfterWait;
                p[18] = Writable ? (byte)1 : (byte)0;
                BinaryPrimitives.WriteInt64LittleEndian(p[20..], WaitTicks);
                BinaryPrimitives.WriteUInt16LittleEndian(p[28..], (ushort)text.Length);
                text.CopyTo(p[30..]);
                break;
            case LogRecordType.Entry:
                BinaryPrimitives.WriteInt64LittleEndian(p[8..], Chunk);
                BinaryPrimitives.WriteUInt32LittleEndian(p[16..], Entry);
                break;
            case LogRecordType.Failed:
                BinaryPrimitives.WriteUInt16LittleEndian(p[8..], (ushort)text.Length);
                text.CopyTo(p[10..]);
                break;
        }
        BinaryPrimitives.WriteUInt32LittleEndian(s[(Head + payload)..], Crc32C.Compute(s[..(Head + payload)]));
        return b;
    }

    /// <summary>Parses the record at the start of <paramref name="source"/>; false when it is not a whole, valid one.</summary>
    public static bool TryParse(ReadOnlySpan<byte> source, ulong expectedSequence, out LogRecord record, out int size)
    {
        record = default;
        size = 0;
        if (source.Length < Head + 4 || BinaryPrimitives.ReadUInt32LittleEndian(source) != Magic)
        {
            return false;
        }
        var type = (LogRecordType)BinaryPrimitives.ReadUInt16LittleEndian(source[4..]);
        int payload = BinaryPrimitives.ReadUInt16LittleEndian(source[6..]);
        size = Align8(Head + payload + 4);
        if (source.Length < size || BinaryPrimitives.ReadUInt64LittleEndian(source[8..]) != expectedSequence
            || BinaryPrimitives.ReadUInt32LittleEndian(source[(Head + payload)..]) != Crc32C.Compute(source[..(Head + payload)]))
        {
            return false;
        }
        var p = source.Slice(Head, payload);
        var snapshot = BinaryPrimitives.ReadInt64LittleEndian(p);
        switch (type)
        {
            case LogRecordType.Created when payload >= 30:
                var nameLength = BinaryPrimitives.ReadUInt16LittleEndian(p[28..]);
                record = new LogRecord(type, snapshot, Text: Encoding.UTF8.GetString(p.Slice(30, Math.Min(nameLength, payload - 30))),
                    Ticks: BinaryPrimitives.ReadInt64LittleEndian(p[8..]), Policy: p[16], AfterWait: p[17], Writable: p[18] == 1,
                    WaitTicks: BinaryPrimitives.ReadInt64LittleEndian(p[20..]));
                return true;
            case LogRecordType.Entry when payload >= 20:
                record = new LogRecord(type, snapshot, BinaryPrimitives.ReadInt64LittleEndian(p[8..]), BinaryPrimitives.ReadUInt32LittleEndian(p[16..]));
                return true;
            case LogRecordType.Removed:
                record = new LogRecord(type, snapshot);
                return true;
            case LogRecordType.Failed when payload >= 10:
                var reasonLength = BinaryPrimitives.ReadUInt16LittleEndian(p[8..]);
                record = new LogRecord(type, snapshot, Text: Encoding.UTF8.GetString(p.Slice(10, Math.Min(reasonLength, payload - 10))));
                return true;
            default:
                return false;
        }
    }

    private static int Align8(int n) => (n + 7) & ~7;
}
