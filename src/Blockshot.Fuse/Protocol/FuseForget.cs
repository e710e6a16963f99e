namespace Blockshot.Fuse.Protocol;

/// <summary><c>struct fuse_forget_in</c> (8 bytes). FORGET gets no reply.</summary>
internal readonly record struct FuseForgetIn(ulong NLookup)
{
    public const int WireSize = 8;

    public static FuseForgetIn Read(ReadOnlySpan<byte> s) => new(Wire.U64(s, 0));

    public void Write(Span<byte> s) => Wire.Put(s, 0, NLookup);
}

/// <summary><c>struct fuse_batch_forget_in</c> (8 bytes), followed by <see cref="Count"/> <see cref="FuseForgetOne"/>. No reply.</summary>
internal readonly record struct FuseBatchForgetIn(uint Count)
{
    public const int WireSize = 8;

    public static FuseBatchForgetIn Read(ReadOnlySpan<byte> s) => new(Wire.U32(s, 0));

    public void Write(Span<byte> s)
    {
        Wire.Put(s, 0, Count);
        Wire.Put(s, 4, 0u);
    }
}

/// <summary><c>struct fuse_forget_one</c> (16 bytes).</summary>
internal readonly record struct FuseForgetOne(ulong NodeId, ulong NLookup)
{
    public const int WireSize = 16;

    public static FuseForgetOne Read(ReadOnlySpan<byte> s) => new(Wire.U64(s, 0), Wire.U64(s, 8));

    public void Write(Span<byte> s)
    {
        Wire.Put(s, 0, NodeId);
        Wire.Put(s, 8, NLookup);
    }
}

/// <summary><c>struct fuse_interrupt_in</c> (8 bytes): the unique id of the request to interrupt.</summary>
internal readonly record struct FuseInterruptIn(ulong Unique)
{
    public const int WireSize = 8;

    public static FuseInterruptIn Read(ReadOnlySpan<byte> s) => new(Wire.U64(s, 0));

    public void Write(Span<byte> s) => Wire.Put(s, 0, Unique);
}
