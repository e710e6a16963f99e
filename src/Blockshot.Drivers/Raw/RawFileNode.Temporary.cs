using Blockshot.Drivers.Raw;
using Microsoft.Win32.SafeHandles;

namespace Blockshot.Drivers;

/// <summary>Unnamed scratch files (O_TMPFILE): space that disappears with the last descriptor.</summary>
public sealed partial class RawFileNode
{
    /// <summary>
    /// Creates an empty, unnamed regular file in <paramref name="directory"/> (O_TMPFILE), read-write and
    /// unlocked. Nothing shows in the directory, and the space is released when the node is disposed or
    /// the process dies. Throws <see cref="ImageOpenException"/> when the directory is missing, not
    /// writable, or on a file system without O_TMPFILE. With <paramref name="direct"/> the file bypasses the
    /// page cache (O_DIRECT) where the file system allows it, and goes through it where it does not;
    /// <paramref name="offloadWrites"/> is <see cref="RawFileOptions.OffloadWrites"/>.
    /// </summary>
    public static RawFileNode CreateTemporary(string directory, bool direct = false, bool offloadWrites = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (!OperatingSystem.IsLinux() || !Environment.Is64BitProcess)
        {
            throw new PlatformNotSupportedException("the raw file driver needs 64-bit Linux");
        }
        var options = new RawFileOptions { Locking = false, Direct = direct, OffloadWrites = offloadWrites };
        int fd;
        int errno;
        do
        {
            fd = Libc.Open(directory, Libc.TempFile | Libc.ReadWrite | Libc.CloseOnExec | (options.Direct ? Libc.Direct : 0), 0x180);
            errno = fd < 0 ? Libc.Errno : 0;
            if (errno == Libc.EINVAL && options.Direct)
            {
                options = options with { Direct = false }; // no O_DIRECT here: buffered
                errno = Libc.EINTR;
            }
        }
        while (errno == Libc.EINTR);
        if (fd < 0)
        {
            if (errno is Libc.EOPNOTSUPP or Libc.EISDIR or Libc.EINVAL)
            {
                throw new ImageOpenException(ImageOpenError.NotFileOrDevice, directory,
                    $"cannot create an unnamed file in {directory}: its file system does not support O_TMPFILE ({Libc.Describe(errno)})");
            }
            throw OpenFailure(directory, errno, options);
        }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        var r = FileStat.TryOf(handle, out var stat);
        if (r < 0)
        {
            handle.Dispose();
            throw OpenFailure(directory, -r, options);
        }
        return new RawFileNode($"{directory} (unnamed)", handle, options, stat);
    }
}
