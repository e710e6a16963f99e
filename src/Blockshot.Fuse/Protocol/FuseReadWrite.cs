namespace Blockshot.Fuse.Protocol;

/// <summary><c>struct fuse_read_in</c> (40 bytes).</summary>
internal readonly record struct FuseReadIn(ulong Fh, ulong Offset, uint Size, uint ReadFlags, ulong LockOwner, uint Flags)
{
    public const int WireSize = 40;

    public static FuseReadIn Read(ReadOnlySpan<byte> s) => new(
        Wire.U64(s, 0), Wire.U64(s, 8), Wire.U32(s, 16), Wire.U32(s, 20), Wire.U64(s, 24), Wire.U32(s, 32));

    public void Write(Span<byte> s)
    {
        Wire.Put(s, 0, Fh);
        Wire.Put(s, 8, Offset);
        Wire.Put(s, 16, Size);
        Wire.Put(s, 20, ReadFlags);
        Wire.Put(s, 24, LockOwner);
        Wire.Put(s, 32, Flags);
        Wire.Put(s, 36, 0u);
    }
}

/// <summary><c>struct fuse_write_in</c> (40 bytes), followed in the request by <see cref="Size"/> bytes of data.</summary>
internal readonly record struct FuseWriteIn(ulong Fh, ulong Offset, uint Size, uint WriteFlags, ulong LockOwner, uint Flags)
{
    public const int WireSize = 40;

    /// <summary>Where the data starts in the request buffer.</summary>
    public const int DataOffset = FuseInHeader.WireSize + WireSize;

    public static FuseWriteIn Read(ReadOnlySpan<byte> s) => new(
        Wire.U64(s, 0), Wire.U64(s, 8), Wire.U32(s, 16), Wire.U32(s, 20), Wire.U64(s, 24), Wire.U32(s, 32));

    public void Write(Span<byte> s)
    {
        Wire.Put(s, 0, Fh);
        Wire.Put(s, 8, Offset);
        Wire.Put(s, 16, Size);
        Wire.Put(s, 20, WriteFlags);
        Wire.Put(s, 24, LockOwner);
        Wire.Put(s, 32, Flags);
        Wire.Put(s, 36, 0u);
    }
}

/// <summary><c>struct fuse_write_out</c> (8 bytes): how many bytes were written.</summary>
internal readonly record struct FuseWriteOut(uint Size)
{
    public const int WireSize = 8;

    public static FuseWriteOut Read(ReadOnlySpan<byte> s) => new(Wire.U32(s, 0));

    public void Write(Span<byte> s)
    {
        Wire.Put(s, 0, Size);
        Wire.Put(s, 4, 0u);
    }
}
