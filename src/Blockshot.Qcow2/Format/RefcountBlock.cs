using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Blockshot.Qcow2.Format;

/// <summary>
/// Reads and writes entries of a refcount block with 2^order-bit entries (order 0–6). Entries narrower
/// than a byte are packed least significant bit first; wider ones are big-endian.
/// </summary>
public static class RefcountBlock
{
    /// <summary>Entries a block of <paramref name="clusterSize"/> bytes holds.</summary>
    public static int EntriesPerBlock(int clusterSize, int order) => (clusterSize * 8) >> order;

    /// <summary>The largest refcount an entry can hold.</summary>
    public static ulong MaxValue(int order) => order == 6 ? ulong.MaxValue : (1UL << (1 << order)) - 1;

    /// <summary>Reads entry <paramref name="index"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Get(ReadOnlySpan<byte> block, int index, int order)
    {
        switch (order)
        {
            case 0:
            case 1:
            case 2:
                {
                    var bits = 1 << order;
                    var b = block[index >> (3 - order)];
                    var shift = (index << order) & 7;
                    return (ulong)((b >> shift) & ((1 << bits) - 1));
                }
            case 3:
                return block[index];
            case 4:
                return BinaryPrimitives.ReadUInt16BigEndian(block[(index * 2)..]);
            case 5:
                return BinaryPrimitives.ReadUInt32BigEndian(block[(index * 4)..]);
            case 6:
                return BinaryPrimitives.ReadUInt64BigEndian(block[(index * 8)..]);
            default:
                throw new ArgumentOutOfRangeException(nameof(order));
        }
    }

    /// <summary>Writes entry <paramref name="index"/>; <paramref name="value"/> must fit.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Set(Span<byte> block, int index, int order, ulong value)
    {
        if (value > MaxValue(order))
        {
            throw new ArgumentOutOfRangeException(nameof(value), value, $"refcount does not fit in {1 << order} bits");
        }
        switch (order)
        {
            case 0:
            case 1:
            case 2:
                {
                    var bits = 1 << order;
                    ref var b = ref block[index >> (3 - order)];
                    var shift = (index << order) & 7;
                    var mask = ((1 << bits) - 1) << shift;
                    b = (byte)((b & ~mask) | ((int)value << shift));
                    break;
                }
            case 3:
                block[index] = (byte)value;
                break;
            case 4:
                BinaryPrimitives.WriteUInt16BigEndian(block[(index * 2)..], (ushort)value);
                break;
            case 5:
                BinaryPrimitives.WriteUInt32BigEndian(block[(index * 4)..], (uint)value);
                break;
            case 6:
                BinaryPrimitives.WriteUInt64BigEndian(block[(index * 8)..], value);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(order));
        }
    }
}
