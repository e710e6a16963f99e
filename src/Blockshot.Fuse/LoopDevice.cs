using System.Globalization;
using Blockshot.Fuse.Loop;
using Blockshot.Fuse.Native;

namespace Blockshot.Fuse;

/// <summary>
/// A loop block device (<c>/dev/loopN</c>) bound to a file. <see cref="Attach(string, bool, bool, int, bool)"/> takes a free device
/// from /dev/loop-control and configures it in one LOOP_CONFIGURE call, falling back to LOOP_SET_FD and
/// LOOP_SET_STATUS64 on kernels without it. The object keeps the device open; with auto-clear (the
/// default) the kernel detaches the device when the last opener closes it, so a crashed process does
/// not leave the device behind unless something else (a mounted filesystem) still holds it.
/// Finding and detaching devices by backing file is in <c>LoopDevice.Find.cs</c>.
/// </summary>
public sealed unsafe partial class LoopDevice : IDisposable
{
    private const string Control = "/dev/loop-control";
    private static readonly TimeSpan ReleaseWait = TimeSpan.FromSeconds(5);

    private int _fd;

    private LoopDevice(int number, int fd, string backingFile, bool readOnly, bool directIo, string? directIoRefusal, int blockSize)
    {
        Number = number;
        _fd = fd;
        BackingFile = backingFile;
        ReadOnly = readOnly;
        DirectIo = directIo;
        DirectIoRefusal = directIoRefusal;
        BlockSize = blockSize;
    }

    /// <summary>The device number N.</summary>
    public int Number { get; }

    /// <summary>The device path, <c>/dev/loopN</c>.</summary>
    public string Path => DevicePath(Number);

    /// <summary>The file the device reads and writes.</summary>
    public string BackingFile { get; }

    /// <summary>True when the device refuses writes.</summary>
    public bool ReadOnly { get; }

    /// <summary>True when the kernel runs the device with direct I/O to the backing file.</summary>
    public bool DirectIo { get; }

    /// <summary>Why direct I/O was asked for and not granted, or null.</summary>
    public string? DirectIoRefusal { get; }

    /// <summary>The device's logical block size in bytes.</summary>
    public int BlockSize { get; }

    /// <summary>True until <see cref="Detach()"/>.</summary>
    public bool IsAttached => Volatile.Read(ref _fd) >= 0;

    /// <summary>
    /// Binds a free loop device to <paramref name="backingFile"/>. With <paramref name="directIo"/> the
    /// file is opened O_DIRECT and the device asked for direct I/O; when the kernel refuses, the device
    /// runs buffered and <see cref="DirectIoRefusal"/> says why.
    /// </summary>
    /// <param name="backingFile">The file to expose as a block device.</param>
    /// <param name="readOnly">Make the device read-only.</param>
    /// <param name="directIo">Ask for direct I/O to the backing file.</param>
    /// <param name="blockSize">Logical block size: 512, 1024, 2048 or 4096.</param>
    /// <param name="autoClear">Detach automatically when the last opener closes the device.</param>
    public static LoopDevice Attach(string backingFile, bool readOnly = false, bool directIo = true, int blockSize = 512, bool autoClear = true) =>
        Attach(backingFile, readOnly, directIo, blockSize, autoClear, legacy: false);

    /// <summary>Attaches as above; with <paramref name="legacy"/>, the way kernels before LOOP_CONFIGURE need (for tests).</summary>
    internal static LoopDevice Attach(string backingFile, bool readOnly, bool directIo, int blockSize, bool autoClear, bool legacy)
    {
        ArgumentException.ThrowIfNullOrEmpty(backingFile);
        if (blockSize is not (512 or 1024 or 2048 or 4096))
        {
            throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize, "a loop block size is 512, 1024, 2048 or 4096");
        }
        var full = System.IO.Path.GetFullPath(backingFile);
        var access = (readOnly ? Libc.ORdOnly : Libc.ORdWr) | Libc.OCloExec;
        string? refusal = null;
        var file = Libc.Open(full, access | (directIo ? Libc.ODirect : 0), 0);
        if (file < 0 && directIo && Libc.Errno == Errno.EINVAL)
        {
            refusal = $"open({full}, O_DIRECT): {SystemCallException.FromLastError("open").Message}";
            directIo = false;
            file = Libc.Open(full, access, 0);
        }
        if (file < 0)
        {
            throw SystemCallException.FromLastError($"open({full})");
        }
        var control = -1;
        try
        {
            control = Libc.Open(Control, Libc.ORdWr | Libc.OCloExec, 0);
            if (control < 0)
            {
                throw SystemCallException.FromLastError($"open({Control})");
            }
            for (var attempt = 0; ; attempt++)
            {
                var number = Libc.Ioctl(control, LoopIoctl.CtlGetFree, 0);
                if (number < 0)
                {
                    throw SystemCallException.FromLastError("ioctl(LOOP_CTL_GET_FREE)");
                }
                var device = OpenDevice(number, readOnly);
                var bound = legacy
                    ? ConfigureLegacy(device, file, full, Flags(readOnly, autoClear), directIo, blockSize, ref refusal)
                    : Configure(device, file, full, readOnly, directIo, blockSize, autoClear, ref refusal);
                if (bound)
                {
                    var status = GetStatus(device);
                    var granted = status is { } s && (s.Flags & LoopIoctl.FlagDirectIo) != 0;
                    if (directIo && !granted && refusal is null)
                    {
                        refusal = "the kernel cleared LO_FLAGS_DIRECT_IO (the backing file cannot take direct I/O at this block size)";
                    }
                    return new LoopDevice(number, device, full, readOnly, granted, refusal, ReadBlockSize(number) ?? blockSize);
                }
                Libc.CloseQuietly(device);
                if (attempt >= 16)
                {
                    throw new IOException($"no free loop device stayed free long enough to bind {full}");
                }
            }
        }
        finally
        {
            // The device holds its own reference to the file.
            Libc.CloseQuietly(file);
            Libc.CloseQuietly(control);
        }
    }

    /// <summary>
    /// Unbinds the device (LOOP_CLR_FD) and closes it, then waits until the kernel has let go of the
    /// backing file, so the file's filesystem can be unmounted. If something else still holds the device
    /// open, the kernel detaches it when that holder closes it. Idempotent.
    /// </summary>
    public void Detach()
    {
        var fd = Interlocked.Exchange(ref _fd, -1);
        if (fd < 0)
        {
            return;
        }
        try
        {
            ClearFd(fd, Path);
        }
        finally
        {
            Libc.CloseQuietly(fd);
        }
        WaitReleased(Number, BackingFile);
    }

    /// <summary>
    /// Makes the device take the backing file's current size (LOOP_SET_CAPACITY), after the file grew
    /// or shrank. The kernel reads the size it has cached for the file, so refresh that first.
    /// </summary>
    public void RefreshCapacity()
    {
        var fd = Volatile.Read(ref _fd);
        ObjectDisposedException.ThrowIf(fd < 0, this);
        if (Libc.Ioctl(fd, LoopIoctl.SetCapacity, 0) != 0)
        {
            throw SystemCallException.FromLastError($"ioctl(LOOP_SET_CAPACITY) on {Path}");
        }
    }

    /// <summary>Same as <see cref="Detach()"/>.</summary>
    public void Dispose() => Detach();

    /// <inheritdoc/>
    public override string ToString() => $"{Path} → {BackingFile}{(ReadOnly ? " (ro)" : "")}{(DirectIo ? " (dio)" : "")}";

    /// <summary>Detaches the loop device at <paramref name="devicePath"/> (e.g. one left behind by a crash).</summary>
    public static void Detach(string devicePath)
    {
        var fd = Libc.Open(devicePath, Libc.ORdOnly | Libc.OCloExec, 0);
        if (fd < 0)
        {
            throw SystemCallException.FromLastError($"open({devicePath})");
        }
        string? backing;
        try
        {
            backing = NumberOf(devicePath) is { } n ? ReadBackingFile(n) : null;
            ClearFd(fd, devicePath);
        }
        finally
        {
            Libc.CloseQuietly(fd);
        }
        if (NumberOf(devicePath) is { } number && backing is not null)
        {
            WaitReleased(number, backing);
        }
    }

    private static bool Configure(int device, int file, string path, bool readOnly, bool directIo, int blockSize, bool autoClear, ref string? refusal)
    {
        var flags = Flags(readOnly, autoClear);
        var name = System.IO.Path.GetFileName(path);
        Span<byte> config = stackalloc byte[LoopConfig.WireSize];
        new LoopConfig(file, (uint)blockSize, new LoopInfo64(0, 0, 0, 0, 0, flags | (directIo ? LoopIoctl.FlagDirectIo : 0), name)).Write(config);
        fixed (byte* p = config)
        {
            if (Libc.Ioctl(device, LoopIoctl.Configure, p) == 0)
            {
                return true;
            }
        }
        var errno = Libc.Errno;
        if (errno == Errno.EBUSY)
        {
            return false; // taken by someone else between GET_FREE and CONFIGURE
        }
        if (errno == Errno.EINVAL && directIo)
        {
            refusal = $"LOOP_CONFIGURE with LO_FLAGS_DIRECT_IO: {new SystemCallException("ioctl", errno).Message}";
            new LoopConfig(file, (uint)blockSize, new LoopInfo64(0, 0, 0, 0, 0, flags, name)).Write(config);
            fixed (byte* p = config)
            {
                if (Libc.Ioctl(device, LoopIoctl.Configure, p) == 0)
                {
                    return true;
                }
            }
            errno = Libc.Errno;
            if (errno == Errno.EBUSY)
            {
                return false;
            }
        }
        if (errno is not (Errno.EINVAL or Errno.ENOTTY))
        {
            throw new SystemCallException($"ioctl(LOOP_CONFIGURE) on {path}", errno);
        }
        return ConfigureLegacy(device, file, path, flags, directIo, blockSize, ref refusal);
    }

    private static uint Flags(bool readOnly, bool autoClear) =>
        (readOnly ? LoopIoctl.FlagReadOnly : 0) | (autoClear ? LoopIoctl.FlagAutoClear : 0);

    // Kernels before 5.8 have no LOOP_CONFIGURE: bind, then set status, block size and direct I/O.
    private static bool ConfigureLegacy(int device, int file, string path, uint flags, bool directIo, int blockSize, ref string? refusal)
    {
        if (Libc.Ioctl(device, LoopIoctl.SetFd, file) != 0)
        {
            if (Libc.Errno == Errno.EBUSY)
            {
                return false;
            }
            throw SystemCallException.FromLastError($"ioctl(LOOP_SET_FD) on {path}");
        }
        Span<byte> info = stackalloc byte[LoopInfo64.WireSize];
        new LoopInfo64(0, 0, 0, 0, 0, flags & LoopIoctl.FlagAutoClear, System.IO.Path.GetFileName(path)).Write(info);
        fixed (byte* p = info)
        {
            if (Libc.Ioctl(device, LoopIoctl.SetStatus64, p) != 0)
            {
                var e = SystemCallException.FromLastError($"ioctl(LOOP_SET_STATUS64) on {path}");
                ClearFd(device, path);
                throw e;
            }
        }
        if (blockSize != 512 && Libc.Ioctl(device, LoopIoctl.SetBlockSize, blockSize) != 0)
        {
            var e = SystemCallException.FromLastError($"ioctl(LOOP_SET_BLOCK_SIZE, {blockSize}) on {path}");
            ClearFd(device, path);
            throw e;
        }
        if (directIo && Libc.Ioctl(device, LoopIoctl.SetDirectIo, 1) != 0)
        {
            refusal = $"LOOP_SET_DIRECT_IO: {SystemCallException.FromLastError("ioctl").Message}";
        }
        return true;
    }

    private static void ClearFd(int fd, string device)
    {
        if (Libc.Ioctl(fd, LoopIoctl.ClrFd, 0) != 0 && Libc.Errno != Errno.ENXIO)
        {
            throw SystemCallException.FromLastError($"ioctl(LOOP_CLR_FD) on {device}");
        }
    }

    private static int OpenDevice(int number, bool readOnly)
    {
        var path = DevicePath(number);
        var flags = (readOnly ? Libc.ORdOnly : Libc.ORdWr) | Libc.OCloExec;
        // The node appears in devtmpfs when the device is created; give it a moment.
        for (var i = 0; ; i++)
        {
            var fd = Libc.Open(path, flags, 0);
            if (fd >= 0)
            {
                return fd;
            }
            if (Libc.Errno != Errno.ENOENT || i >= 50)
            {
                throw SystemCallException.FromLastError($"open({path})");
            }
            Thread.Sleep(10);
        }
    }

    private static LoopInfo64? GetStatus(int fd)
    {
        Span<byte> info = stackalloc byte[LoopInfo64.WireSize];
        fixed (byte* p = info)
        {
            return Libc.Ioctl(fd, LoopIoctl.GetStatus64, p) == 0 ? LoopInfo64.Read(info) : null;
        }
    }

    private static void WaitReleased(int number, string backingFile)
    {
        var deadline = DateTime.UtcNow + ReleaseWait;
        while (SameFile(ReadBackingFile(number), backingFile) && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(10);
        }
    }

    private static string DevicePath(int number) => string.Create(CultureInfo.InvariantCulture, $"/dev/loop{number}");

    private static int? NumberOf(string devicePath)
    {
        var name = System.IO.Path.GetFileName(devicePath);
        return name.StartsWith("loop", StringComparison.Ordinal)
            && int.TryParse(name.AsSpan(4), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : null;
    }

    private static IEnumerable<int> BoundNumbers()
    {
        const string Sys = "/sys/block";
        if (!Directory.Exists(Sys))
        {
            yield break;
        }
        foreach (var dir in Directory.EnumerateDirectories(Sys, "loop*"))
        {
            if (NumberOf(dir) is { } number && File.Exists(System.IO.Path.Combine(dir, "loop", "backing_file")))
            {
                yield return number;
            }
        }
    }

    private static string? ReadBackingFile(int number)
    {
        try
        {
            return File.ReadAllText($"/sys/block/loop{number}/loop/backing_file").TrimEnd('\n');
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or IOException)
        {
            return null; // not bound
        }
    }

    private static int? ReadBlockSize(int number)
    {
        try
        {
            return int.Parse(File.ReadAllText($"/sys/block/loop{number}/queue/logical_block_size").Trim(), CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or FormatException)
        {
            return null;
        }
    }

    private static bool SameFile(string? reported, string path) =>
        reported is not null && (reported == path || reported == path + " (deleted)");
}
