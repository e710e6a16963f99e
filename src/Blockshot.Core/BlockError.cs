namespace Blockshot.Core;

/// <summary>
/// The error classes a block request can end with. Each maps to one errno an export reports
/// (NBD error field, FUSE reply), so the names follow what a client sees.
/// </summary>
public enum BlockError
{
    /// <summary>The device failed the I/O (EIO).</summary>
    Io = 5,

    /// <summary>The write lands past the end, or the storage behind the node is full (ENOSPC).</summary>
    NoSpace = 28,

    /// <summary>The request is malformed: out of range, unaligned, bad flags (EINVAL).</summary>
    Invalid = 22,

    /// <summary>The node or export is read-only (EPERM).</summary>
    ReadOnly = 1,

    /// <summary>The node cannot do this, or cannot do it quickly when asked to be fast (ENOTSUP).</summary>
    NotSupported = 95,

    /// <summary>Memory for the request could not be had (ENOMEM).</summary>
    NoMemory = 12,

    /// <summary>The node is shutting down (ESHUTDOWN).</summary>
    Shutdown = 108,

    /// <summary>The data is no longer available, e.g. a discarded snapshot region (EACCES).</summary>
    AccessDenied = 13,

    /// <summary>The value does not fit the field that must carry it (EOVERFLOW).</summary>
    Overflow = 75,
}
