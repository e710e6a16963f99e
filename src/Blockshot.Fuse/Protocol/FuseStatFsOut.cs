namespace Blockshot.Fuse.Protocol;

/// <summary><c>struct fuse_statfs_out</c> (one <c>struct fuse_kstatfs</c>, 80 bytes).</summary>
internal readonly record struct FuseStatFsOut(
    ulong Blocks, ulong BlocksFree, ulong BlocksAvailable, ulong Files, ulong FilesFree, uint BlockSize, uint NameLength, uint FragmentSize)
{
    public const int WireSize = 80;

    public static FuseStatFsOut Read(ReadOnlySpan<byte> s) => new(
        Wire.U64(s, 0), Wire.U64(s, 8), Wire.U64(s, 16), Wire.U64(s, 24), Wire.U64(s, 32), Wire.U32(s, 40), Wire.U32(s, 44), Wire.U32(s, 48));

    public void Write(Span<byte> s)
    {
        s[..WireSize].Clear();
        Wire.Put(s, 0, Blocks);
        Wire.Put(s, 8, BlocksFree);
        Wire.Put(s, 16, BlocksAvailable);
        Wire.Put(s, 24, Files);
        Wire.Put(s, 32, FilesFree);
        Wire.Put(s, 40, BlockSize);
        Wire.Put(s, 44, NameLength);
        Wire.Put(s, 48, FragmentSize);
    }
}
