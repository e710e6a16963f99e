using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using Blockshot.Core;
using Blockshot.Core.Buffers;
using Blockshot.Drivers.Raw;
using Microsoft.Win32.SafeHandles;

namespace Blockshot.Drivers;

/// <summary>
/// A regular file or a host block device as a block node. Requests are positional (pread/pwrite), so any
/// number may run at once; what the page cache cannot answer at once, and the other blocking calls
/// (fallocate, fdatasync, lseek), run on the driver's own blocking-I/O threads (<c>BlockingIoThreads</c>). Opened with <see cref="Open"/>. The file is split by concern:
/// opening and capabilities here, reads and writes in <c>RawFileNode.Io.cs</c>, O_DIRECT bounce and
/// read-modify-write in <c>RawFileNode.Direct.cs</c>, zeroing and trimming in
/// <c>RawFileNode.Zero.cs</c>, extents, flush and resize in <c>RawFileNode.Metadata.cs</c>.
/// </summary>
public sealed partial class RawFileNode : BlockNode
{
    /// <summary>Largest bounce buffer an unaligned O_DIRECT request uses at a time.</summary>
    private const int BounceSize = 1 << 20;

    private readonly SafeFileHandle _handle;
    private readonly BufferPool _pool;
    private readonly bool _readOnly;
    private readonly bool _direct;
    private readonly bool _offloadWrites;
    private readonly bool _isBlockDevice;
    private readonly bool _rotational;
    private readonly bool _fastZero;

    // O_DIRECT alignment of file offsets and lengths (1 when buffered), and of memory addresses.
    private readonly int _alignment;
    private readonly int _memoryAlignment;

    // Changed only by ResizeAsync, which callers drain requests around (the slot suspends).
    private long _size;

    // Set once the kernel refuses an operation with EOPNOTSUPP, so it is not tried again. Races are
    // harmless: a request that misses the update just tries once more.
    private volatile bool _punchRefused;
    private volatile bool _zeroRangeRefused;
    private volatile bool _discardRefused;
    private volatile bool _dsyncWriteRefused;

    private RawFileNode(string path, SafeFileHandle handle, RawFileOptions options, in FileStat stat)
    {
        Path = path;
        _handle = handle;
        _pool = options.BufferPool ?? BufferPool.Shared;
        _readOnly = options.ReadOnly;
        _direct = options.Direct;
        _offloadWrites = options.OffloadWrites;
        IsLocked = options.Locking;
        _isBlockDevice = stat.IsBlockDevice;
        if (_isBlockDevice)
        {
            _size = DeviceSize(handle, path);
            LogicalBlockSize = DeviceLogicalBlockSize(handle, path);
            _rotational = SysBlock.QueueValue(stat.RdevMajor, stat.RdevMinor, "rotational") == 1;
            _fastZero = SysBlock.QueueValue(stat.RdevMajor, stat.RdevMinor, "write_zeroes_max_bytes") > 0;
            _discardRefused = !(SysBlock.QueueValue(stat.RdevMajor, stat.RdevMinor, "discard_max_bytes") > 0);
        }
        else
        {
            _size = stat.Size;
            LogicalBlockSize = stat.DioOffsetAlign > 0 ? stat.DioOffsetAlign : 512;
            _rotational = SysBlock.QueueValue(stat.DevMajor, stat.DevMinor, "rotational") == 1;
            _fastZero = FileSystems.ZeroesRangesNatively(handle);
        }
        (_alignment, _memoryAlignment) = _direct ? ComputeDirectAlignment(path, stat, LogicalBlockSize) : (1, 1);
    }

    /// <summary>The path the node was opened from.</summary>
    public string Path { get; }

    /// <summary>True for a host block device, false for a regular file.</summary>
    public bool IsBlockDevice => _isBlockDevice;

    /// <summary>True when opened with O_DIRECT.</summary>
    public bool IsDirect => _direct;

    /// <summary>True when opened read-only.</summary>
    public bool IsReadOnly => _readOnly;

    /// <summary>True when the node holds the image locks (see <see cref="RawFileOptions.Locking"/>).</summary>
    public bool IsLocked { get; }

    /// <summary>
    /// The device's logical block size (BLKSSZGET); for a file, the filesystem's O_DIRECT offset
    /// alignment when it reports one, else 512.
    /// </summary>
    public int LogicalBlockSize { get; }

    /// <summary>The offset, length and memory alignment O_DIRECT needs; 1 when buffered.</summary>
    public int DirectAlignment => _alignment;

    /// <inheritdoc/>
    public override string Kind => "raw";

    /// <inheritdoc/>
    public override long Size => Volatile.Read(ref _size);

    /// <summary>
    /// Opens a regular file or a host block device. Throws <see cref="ImageOpenException"/> when the path
    /// is missing, not accessible, not a file or block device, or locked by another user.
    /// </summary>
    public static RawFileNode Open(string path, RawFileOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= RawFileOptions.Default;
        if (!OperatingSystem.IsLinux() || !Environment.Is64BitProcess)
        {
            throw new PlatformNotSupportedException("the raw file driver needs 64-bit Linux");
        }
        var flags = (options.ReadOnly ? Libc.ReadOnly : Libc.ReadWrite) | Libc.CloseOnExec | (options.Direct ? Libc.Direct : 0);
        int fd;
        int errno;
        do
        {
            fd = Libc.Open(path, flags, 0);
            errno = fd < 0 ? Libc.Errno : 0;
        }
        while (errno == Libc.EINTR);
        if (fd < 0)
        {
            throw OpenFailure(path, errno, options);
        }

        var handle = new SafeFileHandle(fd, ownsHandle: true);
        var opened = false;
        try
        {
            var r = FileStat.TryOf(handle, out var stat);
            if (r < 0)
            {
                throw OpenFailure(path, -r, options);
            }
            if (!stat.IsRegular && !stat.IsBlockDevice)
            {
                throw new ImageOpenException(ImageOpenError.NotFileOrDevice, path,
                    $"{path} is {stat.TypeName}, not a regular file or a block device");
            }
            if (options.Locking)
            {
                ImageLock.Acquire(handle, path, options.ReadOnly, stat);
            }
            var node = new RawFileNode(path, handle, options, stat);
            opened = true;
            return node;
        }
        finally
        {
            if (!opened)
            {
                handle.Dispose();
            }
        }
    }

    /// <summary>Bytes the file occupies on disk (for a block device, its size).</summary>
    public long GetAllocatedBytes()
    {
        if (_isBlockDevice)
        {
            return Size;
        }
        var r = FileStat.TryOf(_handle, out var stat);
        if (r < 0)
        {
            ThrowErrno(r, "stat", 0, 0);
        }
        return stat.AllocatedBytes;
    }

    /// <inheritdoc/>
    protected override NodeCapabilities ComputeCapabilities()
    {
        var features = NodeFeatures.MultiConn;
        if (!_isBlockDevice)
        {
            features |= NodeFeatures.Extents;
        }
        if (_rotational)
        {
            features |= NodeFeatures.Rotational;
        }
        if (!_readOnly)
        {
            features |= NodeFeatures.Write | NodeFeatures.Flush | NodeFeatures.Fua | NodeFeatures.WriteZeroes;
            if (!_isBlockDevice || !_discardRefused)
            {
                features |= NodeFeatures.Trim;
            }
            if (_fastZero)
            {
                features |= NodeFeatures.FastZero;
            }
            if (!_isBlockDevice)
            {
                features |= NodeFeatures.Resize;
            }
        }
        return new NodeCapabilities(features, MinBlockSize: 1, PreferredBlockSize: Math.Max(4096, _alignment));
    }

    /// <inheritdoc/>
    public override string Describe() =>
        $"raw({Path}{(_isBlockDevice ? ", device" : "")}{(_direct ? ", direct" : "")}{(_readOnly ? ", read-only" : "")})";

    /// <inheritdoc/>
    protected override ValueTask DisposeCoreAsync()
    {
        // Closing the descriptor releases the image locks with it.
        _handle.Dispose();
        return default;
    }

    internal static ImageOpenException OpenFailure(string path, int errno, RawFileOptions options)
    {
        var mode = options.ReadOnly ? "reading" : "reading and writing";
        var (reason, text) = errno switch
        {
            Libc.ENOENT or Libc.ENOTDIR or Libc.ELOOP => (ImageOpenError.NotFound, $"{path} does not exist"),
            Libc.EACCES or Libc.EPERM => (ImageOpenError.PermissionDenied, $"permission denied opening {path} for {mode}"),
            Libc.EISDIR => (ImageOpenError.NotFileOrDevice, $"{path} is a directory, not a regular file or a block device"),
            Libc.EROFS => (ImageOpenError.ReadOnlyMedium, $"{path} is on read-only storage; open it read-only"),
            Libc.EBUSY => (ImageOpenError.Busy, $"{path} is busy (held exclusively by another user)"),
            Libc.EINVAL when options.Direct => (ImageOpenError.DirectUnsupported, $"{path} does not support direct I/O (O_DIRECT)"),
            _ => (ImageOpenError.Io, $"cannot open {path}"),
        };
        return new ImageOpenException(reason, path, $"{text}: {Libc.Describe(errno)}", errno);
    }

    private static unsafe long DeviceSize(SafeFileHandle handle, string path)
    {
        ulong size;
        if (Libc.Ioctl(handle, Libc.BlkGetSize64, &size) != 0)
        {
            var errno = Libc.Errno;
            throw new ImageOpenException(ImageOpenError.Io, path, $"cannot read the size of {path}: {Libc.Describe(errno)}", errno);
        }
        return (long)size;
    }

    private static unsafe int DeviceLogicalBlockSize(SafeFileHandle handle, string path)
    {
        int size;
        if (Libc.Ioctl(handle, Libc.BlkSszGet, &size) != 0)
        {
            var errno = Libc.Errno;
            throw new ImageOpenException(ImageOpenError.Io, path, $"cannot read the block size of {path}: {Libc.Describe(errno)}", errno);
        }
        return size;
    }

    private static (int Offset, int Memory) ComputeDirectAlignment(string path, in FileStat stat, int logicalBlockSize)
    {
        // Prefer what the kernel reports (statx DIOALIGN); otherwise the device block size, or a page
        // for files, which satisfies every filesystem in practice.
        var offset = stat.DioOffsetAlign > 0 ? stat.DioOffsetAlign : stat.IsBlockDevice ? logicalBlockSize : BufferPool.PageSize;
        var memory = stat.DioOffsetAlign > 0 ? Math.Max(stat.DioMemAlign, 1) : offset;
        if (!BitOperations.IsPow2(offset) || !BitOperations.IsPow2(memory) || offset > BounceSize || memory > BufferPool.PageSize)
        {
            throw new ImageOpenException(ImageOpenError.DirectUnsupported, path,
                $"{path} needs O_DIRECT alignment of {offset} bytes (memory {memory}), which the driver cannot provide");
        }
        return (offset, memory);
    }

    [DoesNotReturn]
    private void ThrowErrno(long negativeErrno, string operation, long offset, long length)
    {
        var errno = (int)-negativeErrno;
        throw new BlockException(Libc.BlockErrorOf(errno), $"{Describe(operation, offset, length)}: {Libc.Describe(errno)}");
    }

    private string Describe(string operation, long offset, long length) =>
        length > 0 ? $"{operation} of {length} bytes at {offset} on {Path}" : $"{operation} on {Path}";

    private ValueTask ReadOnlyFailure(string operation) =>
        ValueTask.FromException(new BlockException(BlockError.ReadOnly, $"{operation} refused: {Path} is open read-only"));
}
