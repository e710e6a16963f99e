namespace Blockshot.Fuse.Protocol;

/// <summary>Notification codes, sent in <see cref="FuseOutHeader.Error"/> with a unique id of zero.</summary>
internal enum FuseNotifyCode
{
    Poll = 1,
    InvalInode = 2,
    InvalEntry = 3,
    Store = 4,
    Retrieve = 5,
    Delete = 6,
    Resend = 7,
}

/// <summary>
/// <c>struct fuse_notify_inval_inode_out</c> (24 bytes): drop cached attributes of a node, and cached
/// data in <c>[Offset, Offset + Length)</c> (a negative offset drops attributes only).
/// </summary>
internal readonly record struct FuseNotifyInvalInodeOut(ulong Ino, long Offset, long Length)
{
    public const int WireSize = 24;

    public static FuseNotifyInvalInodeOut Read(ReadOnlySpan<byte> s) => new(Wire.U64(s, 0), (long)Wire.U64(s, 8), (long)Wire.U64(s, 16));

    public void Write(Span<byte> s)
    {
        Wire.Put(s, 0, Ino);
        Wire.Put(s, 8, (ulong)Offset);
        Wire.Put(s, 16, (ulong)Length);
    }
}
