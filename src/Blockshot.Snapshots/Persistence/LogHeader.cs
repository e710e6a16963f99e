using System.Buffers.Binary;
using Blockshot.Core.Checksums;

namespace Blockshot.Snapshots.Persistence;

/// <summary>
/// The exception log's header; two checksummed copies in the first 4 KiB (at 0 and 2048), the
/// sequence picking which copy a write replaces. Records follow from byte 4096.
/// </summary>
internal sealed record LogHeader
{
    public const int SlotSize = 2048;
    private static readonly byte[] MagicBytes = "BSCBWLOG"u8.ToArray();

    public required uint Sequence { get; init; }

    public required int ChunkSize { get; init; }

    public required long OriginSize { get; init; }

    public required bool Clean { get; init; }

    public required ulong OriginDevice { get; init; }

    public required ulong OriginInode { get; init; }

    public required long OriginModifiedTicks { get; init; }

    public required long HeartbeatTicks { get; init; }

    public void WriteTo(Span<byte> slot)
    {
        slot[..SlotSize].Clear();
        MagicBytes.CopyTo(slot);
        BinaryPrimitives.WriteInt32LittleEndian(slot[8..], 1);
        BinaryPrimitives.WriteUInt32LittleEndian(slot[12..], Sequence);
        BinaryPrimitives.WriteInt32LittleEndian(slot[16..], ChunkSize);
        BinaryPrimitives.WriteInt32LittleEndian(slot[20..], Clean ? 1 : 0);
        BinaryPrimitives.WriteInt64LittleEndian(slot[24..], OriginSize);
        BinaryPrimitives.WriteUInt64LittleEndian(slot[32..], OriginDevice);
        BinaryPrimitives.WriteUInt64LittleEndian(slot[40..], OriginInode);
        BinaryPrimitives.WriteInt64LittleEndian(slot[48..], OriginModifiedTicks);
        BinaryPrimitives.WriteInt64LittleEndian(slot[56..], HeartbeatTicks);
        BinaryPrimitives.WriteUInt32LittleEndian(slot[(SlotSize - 4)..], Crc32C.Compute(slot[..(SlotSize - 4)]));
    }

    public static LogHeader? ReadFrom(ReadOnlySpan<byte> slot)
    {
        if (slot.Length < SlotSize || !slot[..8].SequenceEqual(MagicBytes) || BinaryPrimitives.ReadInt32LittleEndian(slot[8..]) != 1
            || BinaryPrimitives.ReadUInt32LittleEndian(slot[(SlotSize - 4)..]) != Crc32C.Compute(slot[..(SlotSize - 4)]))
        {
            return null;
        }
        return new LogHeader
        {
            Sequence = BinaryPrimitives.ReadUInt32LittleEndian(slot[12..]),
            ChunkSize = BinaryPrimitives.ReadInt32LittleEndian(slot[16..]),
            Clean = BinaryPrimitives.ReadInt32LittleEndian(slot[20..]) == 1,
            OriginSize = BinaryPrimitives.ReadInt64LittleEndian(slot[24..]),
            OriginDevice = BinaryPrimitives.ReadUInt64LittleEndian(slot[32..]),
            OriginInode = BinaryPrimitives.ReadUInt64LittleEndian(slot[40..]),
            OriginModifiedTicks = BinaryPrimitives.ReadInt64LittleEndian(slot[48..]),
            HeartbeatTicks = BinaryPrimitives.ReadInt64LittleEndian(slot[56..]),
        };
    }
}
