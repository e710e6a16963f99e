using Blockshot.Core;
using Blockshot.Core.Buffers;
using Blockshot.Fuse.Native;
using Blockshot.Fuse.Protocol;

namespace Blockshot.Fuse.FileSystem;

/// <summary>
/// The file export: a filesystem whose root is one regular file holding the bytes of a block node.
/// This part answers INIT, attributes, open and release, statfs and errors; the other parts serve
/// I/O (<c>BlockFileSystem.Io.cs</c>) and space management (<c>BlockFileSystem.Space.cs</c>).
/// </summary>
internal sealed partial class BlockFileSystem : RawFileSystem
{
    /// <summary>The node id of the root, which is the file itself.</summary>
    public const ulong RootId = 1;

    private const uint SIfReg = 0x8000; // S_IFREG
    private const uint SuidSgid = 0xC00; // S_ISUID | S_ISGID

    private readonly BlockNode _node;
    private readonly AlignedAccess _io;
    private readonly FuseExportCounters _counters;
    private readonly BufferPool _pool;
    private readonly bool _readOnly;
    private readonly int _maxWrite;
    private readonly TimeSpan _attrTimeout;

    // Attributes a SETATTR may change; guarded by _attrLock (GETATTR and SETATTR are rare).
    private readonly object _attrLock = new();
    private uint _mode;
    private uint _uid;
    private uint _gid;
    private long _atimeTicks;
    private long _ctimeTicks;
    private long _mtimeTicks; // also written by writes, with Volatile.Write

    // 1 when a write completed since the last flush reached the node.
    private int _dirty;
    private long _nextHandle;
    private Exception? _lastError;

    public BlockFileSystem(BlockNode node, FuseExportOptions options, FuseExportCounters counters, BufferPool pool)
    {
        _node = node;
        _counters = counters;
        _pool = pool;
        _io = new AlignedAccess(node, pool);
        _readOnly = options.ReadOnly || !node.Capabilities.CanWrite;
        _maxWrite = MaxWriteFor(node, options.MaxWrite);
        _attrTimeout = options.AttributeTimeout;
        _mode = _readOnly ? 0x124u /* 0444 */ : 0x1A4u /* 0644 */;
        _uid = options.Uid ?? Libc.GetEuid();
        _gid = options.Gid ?? Libc.GetEgid();
        _atimeTicks = _ctimeTicks = _mtimeTicks = DateTime.UtcNow.Ticks;
    }

    /// <summary>True when the export refuses writes.</summary>
    public bool ReadOnly => _readOnly;

    /// <summary>The largest READ or WRITE asked of the kernel.</summary>
    public int MaxWrite => _maxWrite;

    /// <summary>The INIT flags the kernel agreed to.</summary>
    public InitFlags Negotiated { get; private set; }

    /// <summary>The last failure a request reported, for diagnostics.</summary>
    public Exception? LastError => Volatile.Read(ref _lastError);

    /// <summary>The largest request size for <paramref name="node"/>: the option, capped by the node, in whole pages.</summary>
    public static int MaxWriteFor(BlockNode node, int wanted)
    {
        var page = Math.Max(4096, Environment.SystemPageSize);
        var max = Math.Min(wanted, node.Capabilities.MaxBlockSize);
        return Math.Max(page, (int)Align.Down(max, page));
    }

    public override FuseInitOut Init(FuseInitIn request)
    {
        // Decisions (README): direct I/O per open file, so no writeback cache and no data caching;
        // parallel direct writes and async direct I/O so a loop device keeps many requests in flight;
        // O_TRUNC ignored at open, as on a block device; shared mmap allowed despite direct I/O.
        const InitFlags Wanted = InitFlags.AsyncRead | InitFlags.BigWrites | InitFlags.MaxPages | InitFlags.AsyncDio
            | InitFlags.ParallelDirOps | InitFlags.AtomicOTrunc | InitFlags.AbortError | InitFlags.DirectIoAllowMmap;
        var page = Math.Max(4096, Environment.SystemPageSize);
        return new FuseInitOut(
            Major: 0,
            Minor: 0,
            MaxReadahead: (uint)_maxWrite,
            Flags: Wanted,
            MaxBackground: 64,
            CongestionThreshold: 48,
            MaxWrite: (uint)_maxWrite,
            TimeGranularity: 1,
            MaxPages: (ushort)(_maxWrite / page),
            MapAlignment: 0,
            MaxStackDepth: 0);
    }

    public override void Initialized(FuseInitIn request, FuseInitOut reply) => Negotiated = reply.Flags;

    public override ValueTask<int> LookupAsync(FuseRequest request) => Fail(Errno.ENOENT);

    public override ValueTask<int> GetAttrAsync(FuseRequest request, FuseGetAttrIn input)
    {
        if (request.Header.NodeId != RootId)
        {
            return Fail(Errno.ENOENT);
        }
        WriteAttr(request.Reply);
        return new(FuseAttrOut.WireSize);
    }

    public override ValueTask<int> OpenAsync(FuseRequest request, FuseOpenIn input)
    {
        if ((input.Flags & Libc.OAccMode) != Libc.ORdOnly && _readOnly)
        {
            return Refuse(Errno.EROFS);
        }
        _counters.Opened();
        // Direct I/O: every read and write reaches the node, so the page cache never holds a second
        // copy and never serves stale data after another export wrote. Parallel direct writes: the
        // kernel does not serialize writers on the inode lock. O_TRUNC is ignored (AtomicOTrunc).
        var reply = new FuseOpenOut((ulong)Interlocked.Increment(ref _nextHandle), OpenFlags.DirectIo | OpenFlags.ParallelDirectWrites);
        reply.Write(request.Reply);
        return new(FuseOpenOut.WireSize);
    }

    public override ValueTask<int> ReleaseAsync(FuseRequest request, FuseReleaseIn input)
    {
        _counters.Released();
        return new(0);
    }

    public override ValueTask<int> StatFsAsync(FuseRequest request)
    {
        const uint BlockSize = 4096;
        var blocks = (ulong)((_node.Size + BlockSize - 1) / BlockSize);
        new FuseStatFsOut(blocks, 0, 0, 1, 0, BlockSize, 255, BlockSize).Write(request.Reply);
        return new(FuseStatFsOut.WireSize);
    }

    public override int ToErrno(Exception exception)
    {
        _counters.Failed();
        Volatile.Write(ref _lastError, exception);
        return exception is BlockException block ? ErrnoOf(block.Error) : base.ToErrno(exception);
    }

    /// <summary>The errno a FUSE reply carries for a block error: EROFS for read-only, EOPNOTSUPP for not supported.</summary>
    public static int ErrnoOf(BlockError error) => error switch
    {
        BlockError.ReadOnly => Errno.EROFS,
        BlockError.NotSupported => Errno.EOPNOTSUPP,
        _ => (int)error,
    };

    private ValueTask<int> Refuse(int errno)
    {
        _counters.Failed();
        return Fail(errno);
    }

    private void WriteAttr(Span<byte> reply)
    {
        var (seconds, nanos) = Split(_attrTimeout.Ticks);
        new FuseAttrOut(seconds, nanos, Attr()).Write(reply);
    }

    private FuseAttr Attr()
    {
        var size = (ulong)_node.Size;
        lock (_attrLock)
        {
            var (aSec, aNsec) = SplitTime(_atimeTicks);
            var (mSec, mNsec) = SplitTime(Volatile.Read(ref _mtimeTicks));
            var (cSec, cNsec) = SplitTime(_ctimeTicks);
            return new FuseAttr(
                Ino: RootId,
                Size: size,
                Blocks: (size + 511) / 512,
                ATime: aSec,
                MTime: mSec,
                CTime: cSec,
                ATimeNsec: aNsec,
                MTimeNsec: mNsec,
                CTimeNsec: cNsec,
                Mode: SIfReg | _mode,
                NLink: 1,
                Uid: _uid,
                Gid: _gid,
                RDev: 0,
                BlkSize: (uint)Math.Max(4096, _node.Capabilities.PreferredBlockSize),
                Flags: 0);
        }
    }

    private static (ulong Seconds, uint Nanos) Split(long ticks) =>
        ((ulong)(ticks / TimeSpan.TicksPerSecond), (uint)(ticks % TimeSpan.TicksPerSecond * 100));

    private static (ulong Seconds, uint Nanos) SplitTime(long utcTicks) => Split(utcTicks - DateTime.UnixEpoch.Ticks);

    private static long TicksOf(ulong seconds, uint nanos) =>
        DateTime.UnixEpoch.Ticks + (long)seconds * TimeSpan.TicksPerSecond + nanos / 100;
}
