namespace Blockshot.Fuse.Protocol;

/// <summary>The FALLOC_FL_* bits of <see cref="FuseFallocateIn.Mode"/>.</summary>
[Flags]
internal enum FallocateMode : uint
{
    Allocate = 0,
    KeepSize = 0x01,
    PunchHole = 0x02,
    NoHideStale = 0x04,
    CollapseRange = 0x08,
    ZeroRange = 0x10,
    InsertRange = 0x20,
    UnshareRange = 0x40,
    WriteZeroes = 0x80,
}

/// <summary><c>struct fuse_fallocate_in</c> (32 bytes).</summary>
internal readonly record struct FuseFallocateIn(ulong Fh, ulong Offset, ulong Length, FallocateMode Mode)
{
    public const int WireSize = 32;

    public static FuseFallocateIn Read(ReadOnlySpan<byte> s) => new(Wire.U64(s, 0), Wire.U64(s, 8), Wire.U64(s, 16), (FallocateMode)Wire.U32(s, 24));

    public void Write(Span<byte> s)
    {
        Wire.Put(s, 0, Fh);
        Wire.Put(s, 8, Offset);
        Wire.Put(s, 16, Length);
        Wire.Put(s, 24, (uint)Mode);
        Wire.Put(s, 28, 0u);
    }
}
