namespace Blockshot.Fuse.Protocol;

/// <summary>
/// <c>struct fuse_init_in</c>. Kernels before protocol 7.36 send only the first 16 bytes; the 64-bit
/// flag set is <see cref="Flags"/> with <see cref="Flags2"/> as its upper half.
/// </summary>
internal readonly record struct FuseInitIn(uint Major, uint Minor, uint MaxReadahead, uint Flags, uint Flags2)
{
    public const int WireSize = 64;
    public const int CompatWireSize = 16;

    /// <summary>The offered flags as one 64-bit set (the upper half only when FUSE_INIT_EXT is offered).</summary>
    public InitFlags AllFlags =>
        (InitFlags)Flags | ((Flags & (uint)InitFlags.InitExt) != 0 ? (InitFlags)((ulong)Flags2 << 32) : 0);

    public static FuseInitIn Read(ReadOnlySpan<byte> s) => s.Length >= WireSize
        ? new(Wire.U32(s, 0), Wire.U32(s, 4), Wire.U32(s, 8), Wire.U32(s, 12), Wire.U32(s, 16))
        : new(Wire.U32(s, 0), Wire.U32(s, 4), Wire.U32(s, 8), Wire.U32(s, 12), 0);

    public void Write(Span<byte> s)
    {
        s[..WireSize].Clear();
        Wire.Put(s, 0, Major);
        Wire.Put(s, 4, Minor);
        Wire.Put(s, 8, MaxReadahead);
        Wire.Put(s, 12, Flags);
        Wire.Put(s, 16, Flags2);
    }
}

/// <summary><c>struct fuse_init_out</c> (64 bytes; the fields after <see cref="MaxStackDepth"/> are reserved and zero).</summary>
internal readonly record struct FuseInitOut(
    uint Major,
    uint Minor,
    uint MaxReadahead,
    InitFlags Flags,
    ushort MaxBackground,
    ushort CongestionThreshold,
    uint MaxWrite,
    uint TimeGranularity,
    ushort MaxPages,
    ushort MapAlignment,
    uint MaxStackDepth)
{
    public const int WireSize = 64;

    public static FuseInitOut Read(ReadOnlySpan<byte> s) => new(
        Wire.U32(s, 0), Wire.U32(s, 4), Wire.U32(s, 8),
        (InitFlags)Wire.U32(s, 12) | (InitFlags)((ulong)Wire.U32(s, 32) << 32),
        Wire.U16(s, 16), Wire.U16(s, 18), Wire.U32(s, 20), Wire.U32(s, 24),
        Wire.U16(s, 28), Wire.U16(s, 30), Wire.U32(s, 36));

    public void Write(Span<byte> s)
    {
        s[..WireSize].Clear();
        Wire.Put(s, 0, Major);
        Wire.Put(s, 4, Minor);
        Wire.Put(s, 8, MaxReadahead);
        Wire.Put(s, 12, (uint)Flags);
        Wire.Put(s, 16, MaxBackground);
        Wire.Put(s, 18, CongestionThreshold);
        Wire.Put(s, 20, MaxWrite);
        Wire.Put(s, 24, TimeGranularity);
        Wire.Put(s, 28, MaxPages);
        Wire.Put(s, 30, MapAlignment);
        Wire.Put(s, 32, (uint)((ulong)Flags >> 32));
        Wire.Put(s, 36, MaxStackDepth);
    }
}
