using Blockshot.Core.Buffers;

namespace Blockshot.Fuse.Protocol;

/// <summary>
/// One request as read from the device: its header and the buffer that holds it. The reply is built in
/// the same buffer after the 16-byte reply header, so a handler parses its arguments first and only then
/// writes its reply (the two regions overlap).
/// </summary>
internal readonly struct FuseRequest
{
    public FuseRequest(PooledBuffer buffer, int length, FuseInHeader header)
    {
        Buffer = buffer;
        Length = length;
        Header = header;
    }

    /// <summary>The buffer holding the request; owned by the session.</summary>
    public PooledBuffer Buffer { get; }

    /// <summary>Bytes of the request, header included.</summary>
    public int Length { get; }

    /// <summary>The request header.</summary>
    public FuseInHeader Header { get; }

    /// <summary>The bytes after the header: the opcode's argument struct and whatever follows it.</summary>
    public ReadOnlySpan<byte> Args => Buffer.Span[FuseInHeader.WireSize..Length];

    /// <summary>Bytes of arguments after the header.</summary>
    public int ArgsLength => Length - FuseInHeader.WireSize;

    /// <summary>Where the reply payload goes (after the reply header).</summary>
    public Span<byte> Reply => Buffer.Span[FuseOutHeader.WireSize..];

    /// <summary>Room for the reply payload, in bytes.</summary>
    public int ReplyCapacity => Buffer.Length - FuseOutHeader.WireSize;

    /// <summary>The first <paramref name="length"/> bytes of the reply payload, as memory for asynchronous reads.</summary>
    public Memory<byte> ReplyMemory(int length) => Buffer.Memory.Slice(FuseOutHeader.WireSize, length);

    /// <summary><paramref name="length"/> argument bytes starting <paramref name="offset"/> bytes after the header.</summary>
    public ReadOnlyMemory<byte> ArgsMemory(int offset, int length) => Buffer.Memory.Slice(FuseInHeader.WireSize + offset, length);
}
