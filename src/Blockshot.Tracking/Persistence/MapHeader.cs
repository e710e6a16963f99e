using System.Buffers.Binary;
using System.Text;
using Blockshot.Core.Checksums;
using Blockshot.Core.Platform;

namespace Blockshot.Tracking.Persistence;

/// <summary>
/// The sidecar file's header. Two copies live in the first 4 KiB (at 0 and 2048); each write goes to
/// the copy its sequence number picks, so a torn header write always leaves the other intact.
/// Layout (little-endian): magic "BSCBTMAP", version, sequence, block size, flags, device size,
/// generation, period, device identity (device, inode, size, mtime), heartbeat, generation reason,
/// CRC-32C of the 2044 bytes before it.
/// </summary>
internal sealed record MapHeader
{
    public const int SlotSize = 2048;
    public const int Version = 1;
    private static readonly byte[] Magic = "BSCBTMAP"u8.ToArray();

    public required uint Sequence { get; init; }

    public required int BlockSize { get; init; }

    public required long DeviceSize { get; init; }

    public required Guid Generation { get; init; }

    public required byte Period { get; init; }

    /// <summary>Set at a clean close: the map holds every change and nothing wrote the device since.</summary>
    public required bool Clean { get; init; }

    public required DeviceIdentity Identity { get; init; }

    /// <summary>When the tracker last vouched for the device (UTC ticks): refreshed while writes flow.</summary>
    public required long HeartbeatTicks { get; init; }

    public required string GenerationReason { get; init; }

    public void WriteTo(Span<byte> slot)
    {
        slot[..SlotSize].Clear();
        Magic.CopyTo(slot);
        BinaryPrimitives.WriteInt32LittleEndian(slot[8..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(slot[12..], Sequence);
        BinaryPrimitives.WriteInt32LittleEndian(slot[16..], BlockSize);
        BinaryPrimitives.WriteInt32LittleEndian(slot[20..], Clean ? 1 : 0);
        BinaryPrimitives.WriteInt64LittleEndian(slot[24..], DeviceSize);
        Generation.TryWriteBytes(slot[32..]);
        slot[48] = Period;
        BinaryPrimitives.WriteUInt64LittleEndian(slot[56..], Identity.Device);
        BinaryPrimitives.WriteUInt64LittleEndian(slot[64..], Identity.Inode);
        BinaryPrimitives.WriteInt64LittleEndian(slot[72..], Identity.Size);
        BinaryPrimitives.WriteInt64LittleEndian(slot[80..], Identity.ModifiedTicks);
        BinaryPrimitives.WriteInt64LittleEndian(slot[88..], HeartbeatTicks);
        var reason = Encoding.UTF8.GetBytes(GenerationReason);
        var n = Math.Min(reason.Length, 1024);
        BinaryPrimitives.WriteUInt16LittleEndian(slot[96..], (ushort)n);
        reason.AsSpan(0, n).CopyTo(slot[98..]);
        BinaryPrimitives.WriteUInt32LittleEndian(slot[(SlotSize - 4)..], Crc32C.Compute(slot[..(SlotSize - 4)]));
    }

    /// <summary>Parses a header copy; null when it is not one, or its checksum fails (a torn write).</summary>
    public static MapHeader? ReadFrom(ReadOnlySpan<byte> slot)
    {
        if (slot.Length < SlotSize || !slot[..8].SequenceEqual(Magic)
            || BinaryPrimitives.ReadUInt32LittleEndian(slot[(SlotSize - 4)..]) != Crc32C.Compute(slot[..(SlotSize - 4)])
            || BinaryPrimitives.ReadInt32LittleEndian(slot[8..]) != Version)
        {
            return null;
        }
        var reasonLength = Math.Min((int)BinaryPrimitives.ReadUInt16LittleEndian(slot[96..]), 1024);
        return new MapHeader
        {
            Sequence = BinaryPrimitives.ReadUInt32LittleEndian(slot[12..]),
            BlockSize = BinaryPrimitives.ReadInt32LittleEndian(slot[16..]),
            Clean = BinaryPrimitives.ReadInt32LittleEndian(slot[20..]) == 1,
            DeviceSize = BinaryPrimitives.ReadInt64LittleEndian(slot[24..]),
            Generation = new Guid(slot.Slice(32, 16)),
            Period = slot[48],
            Identity = new DeviceIdentity(
                BinaryPrimitives.ReadUInt64LittleEndian(slot[56..]),
                BinaryPrimitives.ReadUInt64LittleEndian(slot[64..]),
                BinaryPrimitives.ReadInt64LittleEndian(slot[72..]),
                BinaryPrimitives.ReadInt64LittleEndian(slot[80..])),
            HeartbeatTicks = BinaryPrimitives.ReadInt64LittleEndian(slot[88..]),
            GenerationReason = Encoding.UTF8.GetString(slot.Slice(98, reasonLength)),
        };
    }
}
