using Blockshot.Fuse.Native;

namespace Blockshot.Fuse.Protocol;

/// <summary>
/// What the session calls for each request it understands: the filesystem logic, kept apart from the
/// wire protocol. Each method gets the request (to build its reply in) and its parsed argument struct,
/// and returns the number of reply payload bytes it wrote, or a negated errno. A method that does not
/// complete synchronously keeps the request buffer until it does. Unimplemented calls answer ENOSYS,
/// which tells the kernel not to ask again where the protocol allows it.
/// </summary>
internal abstract class RawFileSystem
{
    /// <summary>Chooses the INIT reply. The session fills in the version and intersects the flags with those offered.</summary>
    public abstract FuseInitOut Init(FuseInitIn request);

    /// <summary>Called once INIT has been answered, with the values both sides agreed.</summary>
    public virtual void Initialized(FuseInitIn request, FuseInitOut reply)
    {
    }

    /// <summary>The connection is being shut down (DESTROY); no more requests follow.</summary>
    public virtual void Destroy()
    {
    }

    /// <summary>Looks a name up in a directory node; the name is the NUL-terminated argument.</summary>
    public virtual ValueTask<int> LookupAsync(FuseRequest request) => Fail(Errno.ENOSYS);

    /// <summary>The kernel drops <paramref name="nlookup"/> references to <paramref name="nodeId"/> (no reply).</summary>
    public virtual void Forget(ulong nodeId, ulong nlookup)
    {
    }

    /// <summary>The kernel asks to interrupt request <paramref name="unique"/> (no reply).</summary>
    public virtual void Interrupt(ulong unique)
    {
    }

    public virtual ValueTask<int> GetAttrAsync(FuseRequest request, FuseGetAttrIn input) => Fail(Errno.ENOSYS);

    public virtual ValueTask<int> SetAttrAsync(FuseRequest request, FuseSetAttrIn input) => Fail(Errno.ENOSYS);

    public virtual ValueTask<int> OpenAsync(FuseRequest request, FuseOpenIn input) => Fail(Errno.ENOSYS);

    public virtual ValueTask<int> ReadAsync(FuseRequest request, FuseReadIn input) => Fail(Errno.ENOSYS);

    public virtual ValueTask<int> WriteAsync(FuseRequest request, FuseWriteIn input) => Fail(Errno.ENOSYS);

    public virtual ValueTask<int> StatFsAsync(FuseRequest request) => Fail(Errno.ENOSYS);

    public virtual ValueTask<int> ReleaseAsync(FuseRequest request, FuseReleaseIn input) => Fail(Errno.ENOSYS);

    public virtual ValueTask<int> FsyncAsync(FuseRequest request, FuseFsyncIn input) => Fail(Errno.ENOSYS);

    public virtual ValueTask<int> FlushAsync(FuseRequest request, FuseFlushIn input) => Fail(Errno.ENOSYS);

    public virtual ValueTask<int> FallocateAsync(FuseRequest request, FuseFallocateIn input) => Fail(Errno.ENOSYS);

    public virtual ValueTask<int> LseekAsync(FuseRequest request, FuseLseekIn input) => Fail(Errno.ENOSYS);

    /// <summary>The errno a failed request reports; anything unknown is EIO.</summary>
    public virtual int ToErrno(Exception exception) => exception switch
    {
        SystemCallException e => e.Errno,
        OperationCanceledException => Errno.EINTR,
        OutOfMemoryException => Errno.ENOMEM,
        _ => Errno.EIO,
    };

    /// <summary>A completed result carrying a negated errno.</summary>
    protected static ValueTask<int> Fail(int errno) => new(-errno);
}
