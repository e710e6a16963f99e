namespace Blockshot.Fuse.Protocol;

/// <summary><c>struct fuse_in_header</c>: the 40 bytes in front of every request.</summary>
internal readonly record struct FuseInHeader(
    uint Length, FuseOpcode Opcode, ulong Unique, ulong NodeId, uint Uid, uint Gid, uint Pid, ushort TotalExtLength)
{
    public const int WireSize = 40;

    public static FuseInHeader Read(ReadOnlySpan<byte> s) => new(
        Wire.U32(s, 0), (FuseOpcode)Wire.U32(s, 4), Wire.U64(s, 8), Wire.U64(s, 16),
        Wire.U32(s, 24), Wire.U32(s, 28), Wire.U32(s, 32), Wire.U16(s, 36));

    public void Write(Span<byte> s)
    {
        Wire.Put(s, 0, Length);
        Wire.Put(s, 4, (uint)Opcode);
        Wire.Put(s, 8, Unique);
        Wire.Put(s, 16, NodeId);
        Wire.Put(s, 24, Uid);
        Wire.Put(s, 28, Gid);
        Wire.Put(s, 32, Pid);
        Wire.Put(s, 36, TotalExtLength);
        Wire.Put(s, 38, (ushort)0);
    }
}

/// <summary>
/// <c>struct fuse_out_header</c>: the 16 bytes in front of every reply. <see cref="Error"/> is zero or a
/// negated errno. A notification carries <see cref="Unique"/> zero and the notify code in <see cref="Error"/>.
/// </summary>
internal readonly record struct FuseOutHeader(uint Length, int Error, ulong Unique)
{
    public const int WireSize = 16;

    public static FuseOutHeader Read(ReadOnlySpan<byte> s) => new(Wire.U32(s, 0), Wire.I32(s, 4), Wire.U64(s, 8));

    public void Write(Span<byte> s)
    {
        Wire.Put(s, 0, Length);
        Wire.Put(s, 4, Error);
        Wire.Put(s, 8, Unique);
    }
}
