namespace Blockshot.Fuse.Protocol;

/// <summary>The FATTR_* bits of <see cref="FuseSetAttrIn.Valid"/>: which fields a SETATTR changes.</summary>
[Flags]
internal enum SetAttrValid : uint
{
    None = 0,
    Mode = 1 << 0,
    Uid = 1 << 1,
    Gid = 1 << 2,
    Size = 1 << 3,
    ATime = 1 << 4,
    MTime = 1 << 5,
    Fh = 1 << 6,
    ATimeNow = 1 << 7,
    MTimeNow = 1 << 8,
    LockOwner = 1 << 9,
    CTime = 1 << 10,
    KillSuidGid = 1 << 11,
}

/// <summary><c>struct fuse_setattr_in</c> (88 bytes).</summary>
internal readonly record struct FuseSetAttrIn(
    SetAttrValid Valid,
    ulong Fh,
    ulong Size,
    ulong LockOwner,
    ulong ATime,
    ulong MTime,
    ulong CTime,
    uint ATimeNsec,
    uint MTimeNsec,
    uint CTimeNsec,
    uint Mode,
    uint Uid,
    uint Gid)
{
    public const int WireSize = 88;

    public static FuseSetAttrIn Read(ReadOnlySpan<byte> s) => new(
        (SetAttrValid)Wire.U32(s, 0), Wire.U64(s, 8), Wire.U64(s, 16), Wire.U64(s, 24), Wire.U64(s, 32),
        Wire.U64(s, 40), Wire.U64(s, 48), Wire.U32(s, 56), Wire.U32(s, 60), Wire.U32(s, 64), Wire.U32(s, 68),
        Wire.U32(s, 76), Wire.U32(s, 80));

    public void Write(Span<byte> s)
    {
        s[..WireSize].Clear();
        Wire.Put(s, 0, (uint)Valid);
        Wire.Put(s, 8, Fh);
        Wire.Put(s, 16, Size);
        Wire.Put(s, 24, LockOwner);
        Wire.Put(s, 32, ATime);
        Wire.Put(s, 40, MTime);
        Wire.Put(s, 48, CTime);
        Wire.Put(s, 56, ATimeNsec);
        Wire.Put(s, 60, MTimeNsec);
        Wire.Put(s, 64, CTimeNsec);
        Wire.Put(s, 68, Mode);
        Wire.Put(s, 76, Uid);
        Wire.Put(s, 80, Gid);
    }
}
