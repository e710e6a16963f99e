namespace Blockshot.Fuse.Protocol;

/// <summary><c>struct fuse_lseek_in</c> (24 bytes). The kernel sends only SEEK_DATA and SEEK_HOLE.</summary>
internal readonly record struct FuseLseekIn(ulong Fh, ulong Offset, uint Whence)
{
    public const int WireSize = 24;

    public const uint SeekData = 3;
    public const uint SeekHole = 4;

    public static FuseLseekIn Read(ReadOnlySpan<byte> s) => new(Wire.U64(s, 0), Wire.U64(s, 8), Wire.U32(s, 16));

    public void Write(Span<byte> s)
    {
        Wire.Put(s, 0, Fh);
        Wire.Put(s, 8, Offset);
        Wire.Put(s, 16, Whence);
        Wire.Put(s, 20, 0u);
    }
}

/// <summary><c>struct fuse_lseek_out</c> (8 bytes).</summary>
internal readonly record struct FuseLseekOut(ulong Offset)
{
    public const int WireSize = 8;

    public static FuseLseekOut Read(ReadOnlySpan<byte> s) => new(Wire.U64(s, 0));

    public void Write(Span<byte> s) => Wire.Put(s, 0, Offset);
}
