using System.Buffers.Binary;

namespace Blockshot.Qcow2.Format;

/// <summary>The bitmaps header extension: where the bitmap directory lives and how many bitmaps it holds.</summary>
/// <param name="BitmapCount">Number of bitmaps (at least 1).</param>
/// <param name="Reserved">Reserved word, zero in valid images; kept for round trips.</param>
/// <param name="DirectorySize">Bytes of the bitmap directory.</param>
/// <param name="DirectoryOffset">Offset of the bitmap directory (cluster aligned).</param>
public readonly record struct BitmapsExtension(uint BitmapCount, uint Reserved, ulong DirectorySize, ulong DirectoryOffset)
{
    /// <summary>Length of the extension data.</summary>
    public const int Length = 24;

    /// <summary>Parses the extension data.</summary>
    public static BitmapsExtension Parse(ReadOnlySpan<byte> data)
    {
        if (data.Length != Length)
        {
            Qcow2Error.Invalid($"bitmaps extension has invalid length {data.Length}");
        }
        return new BitmapsExtension(
            BinaryPrimitives.ReadUInt32BigEndian(data),
            BinaryPrimitives.ReadUInt32BigEndian(data[4..]),
            BinaryPrimitives.ReadUInt64BigEndian(data[8..]),
            BinaryPrimitives.ReadUInt64BigEndian(data[16..]));
    }

    /// <summary>Serializes the extension data.</summary>
    public byte[] Serialize()
    {
        var data = new byte[Length];
        BinaryPrimitives.WriteUInt32BigEndian(data, BitmapCount);
        BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(4), Reserved);
        BinaryPrimitives.WriteUInt64BigEndian(data.AsSpan(8), DirectorySize);
        BinaryPrimitives.WriteUInt64BigEndian(data.AsSpan(16), DirectoryOffset);
        return data;
    }
}

/// <summary>The full disk encryption header pointer extension.</summary>
/// <param name="Offset">Offset of the encryption header (cluster aligned).</param>
/// <param name="Length">Length of the encryption header in bytes.</param>
public readonly record struct EncryptionHeaderExtension(ulong Offset, ulong Length)
{
    /// <summary>Length of the extension data.</summary>
    public const int DataLength = 16;

    /// <summary>Parses the extension data.</summary>
    public static EncryptionHeaderExtension Parse(ReadOnlySpan<byte> data)
    {
        if (data.Length != DataLength)
        {
            Qcow2Error.Invalid($"encryption header extension has invalid length {data.Length}");
        }
        return new EncryptionHeaderExtension(BinaryPrimitives.ReadUInt64BigEndian(data), BinaryPrimitives.ReadUInt64BigEndian(data[8..]));
    }

    /// <summary>Serializes the extension data.</summary>
    public byte[] Serialize()
    {
        var data = new byte[DataLength];
        BinaryPrimitives.WriteUInt64BigEndian(data, Offset);
        BinaryPrimitives.WriteUInt64BigEndian(data.AsSpan(8), Length);
        return data;
    }
}
