using System.Buffers.Binary;

namespace Blockshot.Nbd.Protocol;

/// <summary>Serializers for replies (server side) into caller-provided spans.</summary>
public static class NbdWire
{
    /// <summary>Writes a simple reply header; returns its size.</summary>
    public static int WriteSimpleReply(Span<byte> destination, uint error, ulong cookie)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, NbdMagic.SimpleReply);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], error);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], cookie);
        return NbdMagic.SimpleReplySize;
    }

    /// <summary>Writes a structured chunk header; returns its size.</summary>
    public static int WriteChunkHeader(Span<byte> destination, bool done, NbdReplyType type, ulong cookie, uint length)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, NbdMagic.StructuredReply);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], done ? (ushort)1 : (ushort)0);
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], (ushort)type);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], cookie);
        BinaryPrimitives.WriteUInt32BigEndian(destination[16..], length);
        return NbdMagic.ChunkHeaderSize;
    }

    /// <summary>Writes an option reply header; returns its size.</summary>
    public static int WriteOptionReplyHeader(Span<byte> destination, uint option, NbdOptionReplyType type, uint length)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, NbdMagic.OptionReply);
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], option);
        BinaryPrimitives.WriteUInt32BigEndian(destination[12..], (uint)type);
        BinaryPrimitives.WriteUInt32BigEndian(destination[16..], length);
        return NbdMagic.OptionReplyHeaderSize;
    }
}
