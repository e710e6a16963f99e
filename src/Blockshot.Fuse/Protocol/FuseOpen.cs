namespace Blockshot.Fuse.Protocol;

/// <summary>The FOPEN_* bits of <see cref="FuseOpenOut.OpenFlags"/>: how the kernel treats an open file.</summary>
[Flags]
internal enum OpenFlags : uint
{
    None = 0,
    DirectIo = 1 << 0,
    KeepCache = 1 << 1,
    NonSeekable = 1 << 2,
    CacheDir = 1 << 3,
    Stream = 1 << 4,
    NoFlush = 1 << 5,
    ParallelDirectWrites = 1 << 6,
    Passthrough = 1 << 7,
}

/// <summary><c>struct fuse_open_in</c> (8 bytes): the open(2) flags.</summary>
internal readonly record struct FuseOpenIn(uint Flags, uint OpenFlags)
{
    public const int WireSize = 8;

    public static FuseOpenIn Read(ReadOnlySpan<byte> s) => new(Wire.U32(s, 0), Wire.U32(s, 4));

    public void Write(Span<byte> s)
    {
        Wire.Put(s, 0, Flags);
        Wire.Put(s, 4, OpenFlags);
    }
}

/// <summary><c>struct fuse_open_out</c> (16 bytes).</summary>
internal readonly record struct FuseOpenOut(ulong Fh, OpenFlags OpenFlags)
{
    public const int WireSize = 16;

    public static FuseOpenOut Read(ReadOnlySpan<byte> s) => new(Wire.U64(s, 0), (OpenFlags)Wire.U32(s, 8));

    public void Write(Span<byte> s)
    {
        Wire.Put(s, 0, Fh);
        Wire.Put(s, 8, (uint)OpenFlags);
        Wire.Put(s, 12, 0u);
    }
}

/// <summary><c>struct fuse_release_in</c> (24 bytes).</summary>
internal readonly record struct FuseReleaseIn(ulong Fh, uint Flags, uint ReleaseFlags, ulong LockOwner)
{
    public const int WireSize = 24;

    public static FuseReleaseIn Read(ReadOnlySpan<byte> s) => new(Wire.U64(s, 0), Wire.U32(s, 8), Wire.U32(s, 12), Wire.U64(s, 16));

    public void Write(Span<byte> s)
    {
        Wire.Put(s, 0, Fh);
        Wire.Put(s, 8, Flags);
        Wire.Put(s, 12, ReleaseFlags);
        Wire.Put(s, 16, LockOwner);
    }
}

/// <summary><c>struct fuse_flush_in</c> (24 bytes): sent on every close(2) of a descriptor.</summary>
internal readonly record struct FuseFlushIn(ulong Fh, ulong LockOwner)
{
    public const int WireSize = 24;

    public static FuseFlushIn Read(ReadOnlySpan<byte> s) => new(Wire.U64(s, 0), Wire.U64(s, 16));

    public void Write(Span<byte> s)
    {
        Wire.Put(s, 0, Fh);
        Wire.Put(s, 8, 0UL);
        Wire.Put(s, 16, LockOwner);
    }
}

/// <summary><c>struct fuse_fsync_in</c> (16 bytes).</summary>
internal readonly record struct FuseFsyncIn(ulong Fh, uint FsyncFlags)
{
    public const int WireSize = 16;

    /// <summary>FUSE_FSYNC_FDATASYNC: only the data need be durable.</summary>
    public const uint FlagDataSync = 1;

    public static FuseFsyncIn Read(ReadOnlySpan<byte> s) => new(Wire.U64(s, 0), Wire.U32(s, 8));

    public void Write(Span<byte> s)
    {
        Wire.Put(s, 0, Fh);
        Wire.Put(s, 8, FsyncFlags);
        Wire.Put(s, 12, 0u);
    }
}
