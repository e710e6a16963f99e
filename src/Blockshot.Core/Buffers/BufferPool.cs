using System.Collections.Concurrent;
using System.Numerics;

namespace Blockshot.Core.Buffers;

/// <summary>
/// A bounded pool of pinned, page-aligned native buffers in power-of-two size classes from 4 KiB to
/// 64 MiB. It counts buffers rented and not yet returned, so tests can fail on leaks at teardown.
/// Buffers are page-aligned so they can be handed to O_DIRECT I/O. Idle buffers of a size class
/// nobody has rented for <see cref="IdleTrimAfter"/> are freed, so memory a burst of large requests
/// needed goes back to the system once the burst is over.
/// </summary>
public sealed class BufferPool : IDisposable
{
    /// <summary>The smallest size class and the alignment of every buffer.</summary>
    public const int PageSize = 4096;

    /// <summary>The largest pooled size class; larger rents are allocated and freed each time.</summary>
    public const int MaxPooledSize = 64 << 20;

    private const int MinShift = 12;
    private const int MaxShift = 26;

    /// <summary>How long a size class may go without a rent before its idle buffers are freed.</summary>
    public static readonly TimeSpan IdleTrimAfter = TimeSpan.FromSeconds(5);

    private readonly ConcurrentQueue<PooledBuffer>[] _classes;
    private readonly long[] _lastRentTicks;
    private readonly Timer _trimTimer;
    private readonly long _retainBudget;
    private long _retainedBytes;
    private long _outstanding;
    private long _allocatedBytes;
    private int _disposed;

    /// <summary>Creates a pool that keeps at most <paramref name="retainBytes"/> of idle buffers.</summary>
    public BufferPool(long retainBytes = 64L << 20)
    {
        _retainBudget = retainBytes;
        _classes = new ConcurrentQueue<PooledBuffer>[MaxShift - MinShift + 1];
        _lastRentTicks = new long[_classes.Length];
        for (var i = 0; i < _classes.Length; i++)
        {
            _classes[i] = new ConcurrentQueue<PooledBuffer>();
        }
        // A weak hold on the pool: an abandoned pool is still collected (its buffers leak only until then).
        var self = new WeakReference<BufferPool>(this);
        _trimTimer = new Timer(static state =>
        {
            if (((WeakReference<BufferPool>)state!).TryGetTarget(out var pool))
            {
                pool.TrimIdle(Environment.TickCount64);
            }
        }, self, IdleTrimAfter, IdleTrimAfter);
    }

    /// <summary>The process-wide pool.</summary>
    public static BufferPool Shared { get; } = new();

    /// <summary>Buffers rented and not yet returned.</summary>
    public long Outstanding => Volatile.Read(ref _outstanding);

    /// <summary>Native bytes held by the pool and its renters.</summary>
    public long AllocatedBytes => Volatile.Read(ref _allocatedBytes);

    /// <summary>Rents a buffer of exactly <paramref name="length"/> usable bytes (capacity may be larger).</summary>
    public PooledBuffer Rent(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var classIndex = ClassOf(length);
        PooledBuffer? buffer = null;
        if (classIndex >= 0)
        {
            Volatile.Write(ref _lastRentTicks[classIndex], Environment.TickCount64);
        }
        if (classIndex >= 0 && _classes[classIndex].TryDequeue(out buffer))
        {
            Interlocked.Add(ref _retainedBytes, -buffer.Capacity);
        }
        buffer ??= Allocate(classIndex >= 0 ? 1 << (classIndex + MinShift) : (int)Align.Up(length, PageSize));
        buffer.OnRent(length);
        Interlocked.Increment(ref _outstanding);
        return buffer;
    }

    internal void Return(PooledBuffer buffer)
    {
        Interlocked.Decrement(ref _outstanding);
        var classIndex = ClassOf(buffer.Capacity);
        if (classIndex >= 0 && (1 << (classIndex + MinShift)) == buffer.Capacity && Volatile.Read(ref _disposed) == 0)
        {
            if (Interlocked.Add(ref _retainedBytes, buffer.Capacity) <= _retainBudget)
            {
                _classes[classIndex].Enqueue(buffer);
                return;
            }
            Interlocked.Add(ref _retainedBytes, -buffer.Capacity);
        }
        Free(buffer);
    }

    /// <summary>Frees every idle buffer. Buffers still rented are freed when returned.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        _trimTimer.Dispose();
        foreach (var queue in _classes)
        {
            while (queue.TryDequeue(out var buffer))
            {
                Free(buffer);
            }
        }
    }

    /// <summary>
    /// Frees the idle buffers of every size class not rented from since <see cref="IdleTrimAfter"/>
    /// before <paramref name="nowTicks"/> (an <see cref="Environment.TickCount64"/> value). Returns the
    /// bytes freed. Runs on a timer; public so tests can drive it.
    /// </summary>
    public long TrimIdle(long nowTicks)
    {
        long freed = 0;
        for (var i = 0; i < _classes.Length; i++)
        {
            if (nowTicks - Volatile.Read(ref _lastRentTicks[i]) < (long)IdleTrimAfter.TotalMilliseconds)
            {
                continue;
            }
            while (_classes[i].TryDequeue(out var buffer))
            {
                Interlocked.Add(ref _retainedBytes, -buffer.Capacity);
                freed += buffer.Capacity;
                Free(buffer);
            }
        }
        return freed;
    }

    private PooledBuffer Allocate(int capacity)
    {
        Interlocked.Add(ref _allocatedBytes, capacity);
        return new PooledBuffer(this, capacity);
    }

    private void Free(PooledBuffer buffer)
    {
        Interlocked.Add(ref _allocatedBytes, -buffer.Capacity);
        buffer.FreeNative();
    }

    private static int ClassOf(int length)
    {
        if (length > MaxPooledSize)
        {
            return -1;
        }
        var shift = Math.Max(MinShift, 32 - BitOperations.LeadingZeroCount((uint)Math.Max(length - 1, 1)));
        return shift - MinShift;
    }
}
