namespace Blockshot.Fuse.Protocol;

/// <summary>Handles one request; returns the reply payload length or a negated errno.</summary>
internal delegate ValueTask<int> FuseHandler(FuseSession session, FuseRequest request);

/// <summary>One row of the opcode table.</summary>
/// <param name="Opcode">The opcode.</param>
/// <param name="Name">The kernel's name for it, for counters and messages.</param>
/// <param name="InSize">Bytes of argument struct the request must carry after the header.</param>
/// <param name="OutSize">Bytes of the fixed reply struct (0 for none or variable).</param>
/// <param name="NoReply">True when the kernel expects no reply (FORGET, BATCH_FORGET, INTERRUPT).</param>
/// <param name="Handler">The handler, or null: the session answers ENOSYS.</param>
internal sealed record OpcodeInfo(FuseOpcode Opcode, string Name, int InSize, int OutSize, bool NoReply, FuseHandler? Handler);

/// <summary>
/// The one table that maps each opcode to its argument and reply sizes and its handler. Handlers parse
/// the argument struct and call the <see cref="RawFileSystem"/>; the lambdas are static, so dispatch
/// allocates nothing. Opcodes listed without a handler, and opcodes not listed, answer ENOSYS.
/// </summary>
internal static class OpcodeTable
{
    /// <summary>One past the largest opcode the table knows.</summary>
    public const int Limit = (int)FuseOpcode.Statx + 1;

    private static readonly OpcodeInfo?[] Entries = Build();

    /// <summary>The row for <paramref name="opcode"/>, or null when the opcode is unknown.</summary>
    public static OpcodeInfo? Find(FuseOpcode opcode) => (uint)opcode < Limit ? Entries[(int)opcode] : null;

    /// <summary>Every row, in opcode order.</summary>
    public static IEnumerable<OpcodeInfo> All
    {
        get
        {
            foreach (var entry in Entries)
            {
                if (entry is not null)
                {
                    yield return entry;
                }
            }
        }
    }

    private static OpcodeInfo?[] Build()
    {
        var t = new OpcodeInfo?[Limit];
        void Add(FuseOpcode op, string name, int inSize, int outSize, FuseHandler? handler, bool noReply = false) =>
            t[(int)op] = new OpcodeInfo(op, name, inSize, outSize, noReply, handler);

        // Session-level requests.
        Add(FuseOpcode.Init, "INIT", FuseInitIn.CompatWireSize, FuseInitOut.WireSize, static (s, r) => s.HandleInit(r));
        Add(FuseOpcode.Destroy, "DESTROY", 0, 0, static (s, r) => s.HandleDestroy());
        Add(FuseOpcode.Interrupt, "INTERRUPT", FuseInterruptIn.WireSize, 0,
            static (s, r) => s.HandleInterrupt(FuseInterruptIn.Read(r.Args)), noReply: true);
        Add(FuseOpcode.Forget, "FORGET", FuseForgetIn.WireSize, 0,
            static (s, r) => s.HandleForget(r.Header.NodeId, FuseForgetIn.Read(r.Args).NLookup), noReply: true);
        Add(FuseOpcode.BatchForget, "BATCH_FORGET", FuseBatchForgetIn.WireSize, 0, static (s, r) => s.HandleBatchForget(r), noReply: true);

        // Node and file requests.
        Add(FuseOpcode.Lookup, "LOOKUP", 1, FuseEntryOut.WireSize, static (s, r) => s.FileSystem.LookupAsync(r));
        Add(FuseOpcode.GetAttr, "GETATTR", FuseGetAttrIn.WireSize, FuseAttrOut.WireSize,
            static (s, r) => s.FileSystem.GetAttrAsync(r, FuseGetAttrIn.Read(r.Args)));
        Add(FuseOpcode.SetAttr, "SETATTR", FuseSetAttrIn.WireSize, FuseAttrOut.WireSize,
            static (s, r) => s.FileSystem.SetAttrAsync(r, FuseSetAttrIn.Read(r.Args)));
        Add(FuseOpcode.Open, "OPEN", FuseOpenIn.WireSize, FuseOpenOut.WireSize,
            static (s, r) => s.FileSystem.OpenAsync(r, FuseOpenIn.Read(r.Args)));
        Add(FuseOpcode.Read, "READ", FuseReadIn.WireSize, 0, static (s, r) => s.FileSystem.ReadAsync(r, FuseReadIn.Read(r.Args)));
        Add(FuseOpcode.Write, "WRITE", FuseWriteIn.WireSize, FuseWriteOut.WireSize,
            static (s, r) => s.FileSystem.WriteAsync(r, FuseWriteIn.Read(r.Args)));
        Add(FuseOpcode.StatFs, "STATFS", 0, FuseStatFsOut.WireSize, static (s, r) => s.FileSystem.StatFsAsync(r));
        Add(FuseOpcode.Release, "RELEASE", FuseReleaseIn.WireSize, 0,
            static (s, r) => s.FileSystem.ReleaseAsync(r, FuseReleaseIn.Read(r.Args)));
        Add(FuseOpcode.Fsync, "FSYNC", FuseFsyncIn.WireSize, 0, static (s, r) => s.FileSystem.FsyncAsync(r, FuseFsyncIn.Read(r.Args)));
        Add(FuseOpcode.Flush, "FLUSH", FuseFlushIn.WireSize, 0, static (s, r) => s.FileSystem.FlushAsync(r, FuseFlushIn.Read(r.Args)));
        Add(FuseOpcode.Fallocate, "FALLOCATE", FuseFallocateIn.WireSize, 0,
            static (s, r) => s.FileSystem.FallocateAsync(r, FuseFallocateIn.Read(r.Args)));
        Add(FuseOpcode.Lseek, "LSEEK", FuseLseekIn.WireSize, FuseLseekOut.WireSize,
            static (s, r) => s.FileSystem.LseekAsync(r, FuseLseekIn.Read(r.Args)));

        // Known, not served: a file export has no directories, links, xattrs or locks. ENOSYS makes the
        // kernel stop asking (xattrs, access, copy_file_range, syncfs, statx) or fall back to local behaviour.
        Add(FuseOpcode.ReadLink, "READLINK", 0, 0, null);
        Add(FuseOpcode.Symlink, "SYMLINK", 0, 0, null);
        Add(FuseOpcode.MkNod, "MKNOD", 0, 0, null);
        Add(FuseOpcode.MkDir, "MKDIR", 0, 0, null);
        Add(FuseOpcode.Unlink, "UNLINK", 0, 0, null);
        Add(FuseOpcode.RmDir, "RMDIR", 0, 0, null);
        Add(FuseOpcode.Rename, "RENAME", 0, 0, null);
        Add(FuseOpcode.Link, "LINK", 0, 0, null);
        Add(FuseOpcode.SetXattr, "SETXATTR", 0, 0, null);
        Add(FuseOpcode.GetXattr, "GETXATTR", 0, 0, null);
        Add(FuseOpcode.ListXattr, "LISTXATTR", 0, 0, null);
        Add(FuseOpcode.RemoveXattr, "REMOVEXATTR", 0, 0, null);
        Add(FuseOpcode.OpenDir, "OPENDIR", 0, 0, null);
        Add(FuseOpcode.ReadDir, "READDIR", 0, 0, null);
        Add(FuseOpcode.ReleaseDir, "RELEASEDIR", 0, 0, null);
        Add(FuseOpcode.FsyncDir, "FSYNCDIR", 0, 0, null);
        Add(FuseOpcode.GetLk, "GETLK", 0, 0, null);
        Add(FuseOpcode.SetLk, "SETLK", 0, 0, null);
        Add(FuseOpcode.SetLkW, "SETLKW", 0, 0, null);
        Add(FuseOpcode.Access, "ACCESS", 0, 0, null);
        Add(FuseOpcode.Create, "CREATE", 0, 0, null);
        Add(FuseOpcode.Bmap, "BMAP", 0, 0, null);
        Add(FuseOpcode.Ioctl, "IOCTL", 0, 0, null);
        Add(FuseOpcode.Poll, "POLL", 0, 0, null);
        Add(FuseOpcode.NotifyReply, "NOTIFY_REPLY", 0, 0, null, noReply: true);
        Add(FuseOpcode.ReadDirPlus, "READDIRPLUS", 0, 0, null);
        Add(FuseOpcode.Rename2, "RENAME2", 0, 0, null);
        Add(FuseOpcode.CopyFileRange, "COPY_FILE_RANGE", 0, 0, null);
        Add(FuseOpcode.SetupMapping, "SETUPMAPPING", 0, 0, null);
        Add(FuseOpcode.RemoveMapping, "REMOVEMAPPING", 0, 0, null);
        Add(FuseOpcode.SyncFs, "SYNCFS", 0, 0, null);
        Add(FuseOpcode.TmpFile, "TMPFILE", 0, 0, null);
        Add(FuseOpcode.Statx, "STATX", 0, 0, null);
        return t;
    }
}
