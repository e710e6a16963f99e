namespace Blockshot.Fuse.Native;

/// <summary>The Linux errno values the FUSE export reads and replies with.</summary>
internal static class Errno
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EINTR = 4;
    public const int EIO = 5;
    public const int ENXIO = 6;
    public const int EBADF = 9;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int EACCES = 13;
    public const int EBUSY = 16;
    public const int ENODEV = 19;
    public const int EINVAL = 22;
    public const int ENOTTY = 25;
    public const int EFBIG = 27;
    public const int ENOSPC = 28;
    public const int EROFS = 30;
    public const int ENOSYS = 38;
    public const int EPROTO = 71;
    public const int EOVERFLOW = 75;
    public const int EOPNOTSUPP = 95;
    public const int ECONNABORTED = 103;
    public const int ENOTCONN = 107;
}
