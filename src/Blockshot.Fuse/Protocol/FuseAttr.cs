namespace Blockshot.Fuse.Protocol;

/// <summary><c>struct fuse_attr</c>: what <c>stat</c> shows for a node (88 bytes).</summary>
internal readonly record struct FuseAttr(
    ulong Ino,
    ulong Size,
    ulong Blocks,
    ulong ATime,
    ulong MTime,
    ulong CTime,
    uint ATimeNsec,
    uint MTimeNsec,
    uint CTimeNsec,
    uint Mode,
    uint NLink,
    uint Uid,
    uint Gid,
    uint RDev,
    uint BlkSize,
    uint Flags)
{
    public const int WireSize = 88;

    public static FuseAttr Read(ReadOnlySpan<byte> s) => new(
        Wire.U64(s, 0), Wire.U64(s, 8), Wire.U64(s, 16), Wire.U64(s, 24), Wire.U64(s, 32), Wire.U64(s, 40),
        Wire.U32(s, 48), Wire.U32(s, 52), Wire.U32(s, 56), Wire.U32(s, 60), Wire.U32(s, 64), Wire.U32(s, 68),
        Wire.U32(s, 72), Wire.U32(s, 76), Wire.U32(s, 80), Wire.U32(s, 84));

    public void Write(Span<byte> s)
    {
        Wire.Put(s, 0, Ino);
        Wire.Put(s, 8, Size);
        Wire.Put(s, 16, Blocks);
        Wire.Put(s, 24, ATime);
        Wire.Put(s, 32, MTime);
        Wire.Put(s, 40, CTime);
        Wire.Put(s, 48, ATimeNsec);
        Wire.Put(s, 52, MTimeNsec);
        Wire.Put(s, 56, CTimeNsec);
        Wire.Put(s, 60, Mode);
        Wire.Put(s, 64, NLink);
        Wire.Put(s, 68, Uid);
        Wire.Put(s, 72, Gid);
        Wire.Put(s, 76, RDev);
        Wire.Put(s, 80, BlkSize);
        Wire.Put(s, 84, Flags);
    }
}

/// <summary><c>struct fuse_attr_out</c>: the GETATTR and SETATTR reply (104 bytes).</summary>
internal readonly record struct FuseAttrOut(ulong AttrValid, uint AttrValidNsec, FuseAttr Attr)
{
    public const int WireSize = 16 + FuseAttr.WireSize;

    public static FuseAttrOut Read(ReadOnlySpan<byte> s) => new(Wire.U64(s, 0), Wire.U32(s, 8), FuseAttr.Read(s[16..]));

    public void Write(Span<byte> s)
    {
        Wire.Put(s, 0, AttrValid);
        Wire.Put(s, 8, AttrValidNsec);
        Wire.Put(s, 12, 0u);
        Attr.Write(s[16..]);
    }
}

/// <summary><c>struct fuse_entry_out</c>: the LOOKUP reply (128 bytes).</summary>
internal readonly record struct FuseEntryOut(
    ulong NodeId, ulong Generation, ulong EntryValid, ulong AttrValid, uint EntryValidNsec, uint AttrValidNsec, FuseAttr Attr)
{
    public const int WireSize = 40 + FuseAttr.WireSize;

    public static FuseEntryOut Read(ReadOnlySpan<byte> s) => new(
        Wire.U64(s, 0), Wire.U64(s, 8), Wire.U64(s, 16), Wire.U64(s, 24), Wire.U32(s, 32), Wire.U32(s, 36), FuseAttr.Read(s[40..]));

    public void Write(Span<byte> s)
    {
        Wire.Put(s, 0, NodeId);
        Wire.Put(s, 8, Generation);
        Wire.Put(s, 16, EntryValid);
        Wire.Put(s, 24, AttrValid);
        Wire.Put(s, 32, EntryValidNsec);
        Wire.Put(s, 36, AttrValidNsec);
        Attr.Write(s[40..]);
    }
}

/// <summary><c>struct fuse_getattr_in</c> (16 bytes).</summary>
internal readonly record struct FuseGetAttrIn(uint GetAttrFlags, ulong Fh)
{
    public const int WireSize = 16;

    /// <summary>FUSE_GETATTR_FH: <see cref="Fh"/> names an open file.</summary>
    public const uint FlagFh = 1;

    public static FuseGetAttrIn Read(ReadOnlySpan<byte> s) => new(Wire.U32(s, 0), Wire.U64(s, 8));

    public void Write(Span<byte> s)
    {
        Wire.Put(s, 0, GetAttrFlags);
        Wire.Put(s, 4, 0u);
        Wire.Put(s, 8, Fh);
    }
}
