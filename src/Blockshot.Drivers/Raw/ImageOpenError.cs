namespace Blockshot.Drivers;

/// <summary>Why an image or device could not be opened. The CLI maps each to a message and exit code.</summary>
public enum ImageOpenError
{
    /// <summary>Something else failed; <see cref="ImageOpenException.Errno"/> says what.</summary>
    Io,

    /// <summary>The path does not exist (ENOENT, ENOTDIR).</summary>
    NotFound,

    /// <summary>The caller may not open the path as asked (EACCES, EPERM).</summary>
    PermissionDenied,

    /// <summary>The path is neither a regular file nor a block device.</summary>
    NotFileOrDevice,

    /// <summary>A read-write open of something that can only be read (EROFS).</summary>
    ReadOnlyMedium,

    /// <summary>Another process holds a lock that conflicts with this open.</summary>
    Locked,

    /// <summary>The filesystem has no open-file-description locks; open with locking off to proceed.</summary>
    LockingUnsupported,

    /// <summary>The filesystem or device refuses O_DIRECT, or needs an alignment the driver cannot give.</summary>
    DirectUnsupported,

    /// <summary>The device is held exclusively by the kernel or another process (EBUSY).</summary>
    Busy,
}
