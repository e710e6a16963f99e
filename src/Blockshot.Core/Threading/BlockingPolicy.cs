namespace Blockshot.Core.Threading;

/// <summary>
/// Whether the current thread may wait for the disk. The thread pool's threads may not: they are few
/// and shared. Nor may a thread that serves many requests in turn (an NBD connection's reader), which
/// marks itself with <see cref="ForbidBlockingOnThisThread"/>: one request's wait would stall all those
/// behind it. Any other thread (a FUSE reader, a command's main thread, a blocking-I/O thread) may, and
/// drivers then run their system calls inline instead of handing them to another thread.
/// </summary>
public static class BlockingPolicy
{
    [ThreadStatic]
    private static bool _forbidden;

    /// <summary>True when a blocking system call on this thread is acceptable.</summary>
    public static bool MayBlockHere => !_forbidden && !Thread.CurrentThread.IsThreadPoolThread;

    /// <summary>Marks the current thread as one that must not wait for the disk, for its whole life.</summary>
    public static void ForbidBlockingOnThisThread() => _forbidden = true;
}
