using System.Buffers.Binary;

namespace Blockshot.Nbd.Protocol;

/// <summary>A compact (28-byte) transmission request header.</summary>
/// <param name="Flags">Command flags.</param>
/// <param name="Command">The command.</param>
/// <param name="Cookie">Opaque handle echoed in the reply.</param>
/// <param name="Offset">Byte offset.</param>
/// <param name="Length">Byte length.</param>
public readonly record struct NbdRequest(NbdCommandFlags Flags, NbdCommand Command, ulong Cookie, ulong Offset, uint Length)
{
    /// <summary>Parses a header; returns false when the magic is wrong.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out NbdRequest request)
    {
        if (BinaryPrimitives.ReadUInt32BigEndian(source) != NbdMagic.Request)
        {
            request = default;
            return false;
        }
        request = new NbdRequest(
            (NbdCommandFlags)BinaryPrimitives.ReadUInt16BigEndian(source[4..]),
            (NbdCommand)BinaryPrimitives.ReadUInt16BigEndian(source[6..]),
            BinaryPrimitives.ReadUInt64BigEndian(source[8..]),
            BinaryPrimitives.ReadUInt64BigEndian(source[16..]),
            BinaryPrimitives.ReadUInt32BigEndian(source[24..]));
        return true;
    }

    /// <summary>Writes the header (used by the client and tests).</summary>
    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, NbdMagic.Request);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], (ushort)Flags);
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], (ushort)Command);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], Cookie);
        BinaryPrimitives.WriteUInt64BigEndian(destination[16..], Offset);
        BinaryPrimitives.WriteUInt32BigEndian(destination[24..], Length);
    }
}
