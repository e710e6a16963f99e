using Blockshot.Core.Threading;

namespace Blockshot.Drivers.Raw;

/// <summary>
/// Threads of the driver's own for system calls that may block: reads that miss the page cache, writes
/// the file system will not take without waiting, O_DIRECT I/O, fdatasync, fallocate. The .NET thread
/// pool starts with one thread per core and adds more only slowly when they block, so 32 requests
/// waiting on a disk would run two at a time; here a new thread starts whenever work is queued and none
/// is idle, up to <see cref="MaxThreads"/>. A few threads stay for good; the others exit after they sit
/// idle for <see cref="IdleExit"/>.
/// </summary>
/// <remarks>
/// Work items run their continuations on the thread that completed them, so a request's next step runs
/// here too. Any thread but the thread pool's and an NBD connection's reader may block
/// (<see cref="BlockingPolicy.MayBlockHere"/>), so that step's own blocking calls run inline instead of being queued again.
/// </remarks>
internal static class BlockingIoThreads
{
    /// <summary>The most threads at once, as many as requests a disk queue usefully takes.</summary>
    public const int MaxThreads = 64;

    /// <summary>Threads that never exit once started.</summary>
    private const int PermanentThreads = 2;

    private const int StackBytes = 256 << 10;

    /// <summary>How long a thread beyond the permanent ones waits for work before it exits.</summary>
    public static readonly TimeSpan IdleExit = TimeSpan.FromSeconds(10);

    // Guards the queue (an intrusive list through the items, so queueing allocates nothing) and the counts.
    private static readonly object Gate = new();
    private static BlockingIoWork? _head;
    private static BlockingIoWork? _tail;
    private static int _threads;

    // Threads waiting for work that no Queue call has woken yet.
    private static int _idle;
    private static long _taken;

    /// <summary>Work items the threads have taken since the process started (for tests and diagnostics).</summary>
    public static long Taken
    {
        get
        {
            lock (Gate)
            {
                return _taken;
            }
        }
    }

    /// <summary>Threads running now (for tests and diagnostics).</summary>
    public static int ThreadCount
    {
        get
        {
            lock (Gate)
            {
                return _threads;
            }
        }
    }

    /// <summary>Runs <paramref name="work"/> on one of the threads: an idle one, or a new one if none is idle.</summary>
    public static void Queue(BlockingIoWork work)
    {
        var start = false;
        lock (Gate)
        {
            if (_tail is null)
            {
                _head = work;
            }
            else
            {
                _tail.NextQueued = work;
            }
            _tail = work;
            if (_idle > 0)
            {
                _idle--;
                Monitor.Pulse(Gate);
            }
            else if (_threads < MaxThreads)
            {
                _threads++;
                start = true;
            }
        }
        if (start)
        {
            new Thread(Run, StackBytes) { IsBackground = true, Name = "blockshot-io" }.UnsafeStart();
        }
    }

    private static void Run()
    {
        while (true)
        {
            BlockingIoWork work;
            lock (Gate)
            {
                while (_head is null)
                {
                    _idle++;
                    if (!Monitor.Wait(Gate, IdleExit))
                    {
                        _idle--; // timed out: no Queue call counted on this thread
                        if (_head is null && _threads > PermanentThreads)
                        {
                            _threads--;
                            return;
                        }
                    }
                }
                work = _head;
                _head = work.NextQueued;
                if (_head is null)
                {
                    _tail = null;
                }
                work.NextQueued = null;
                _taken++;
            }
            work.Execute();
        }
    }
}

/// <summary>A unit of work for <see cref="BlockingIoThreads"/>; it reports its own failures.</summary>
internal abstract class BlockingIoWork
{
    internal BlockingIoWork? NextQueued;

    /// <summary>Does the work, on a blocking-I/O thread.</summary>
    public abstract void Execute();
}
