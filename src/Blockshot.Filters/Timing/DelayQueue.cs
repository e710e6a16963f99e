using System.Diagnostics;

namespace Blockshot.Filters.Timing;

/// <summary>
/// Waits until a <see cref="Stopwatch"/> timestamp without allocating per wait: waiters are pooled
/// <see cref="System.Threading.Tasks.Sources.IValueTaskSource"/> objects kept in a priority queue,
/// woken by one timer armed for the earliest deadline. Used by filters that pace or delay requests.
/// </summary>
public sealed class DelayQueue : IDisposable
{
    // Guards _queue, _free and _armedFor.
    private readonly Lock _lock = new();
    private readonly PriorityQueue<DelayWaiter, long> _queue = new();
    private readonly Stack<DelayWaiter> _free = new();
    private readonly Timer _timer;
    private long _armedFor = long.MaxValue;
    private bool _disposed;

    /// <summary>Creates a queue with its own timer.</summary>
    public DelayQueue()
    {
        _timer = new Timer(static state => ((DelayQueue)state!).OnTimer(), this, Timeout.Infinite, Timeout.Infinite);
    }

    /// <summary>The process-wide queue.</summary>
    public static DelayQueue Shared { get; } = new();

    /// <summary>Waiters not yet woken.</summary>
    public int Pending
    {
        get
        {
            lock (_lock)
            {
                return _queue.Count;
            }
        }
    }

    /// <summary>Converts a duration to <see cref="Stopwatch"/> ticks.</summary>
    public static long TicksOf(TimeSpan duration) => (long)(duration.TotalSeconds * Stopwatch.Frequency);

    /// <summary>Completes at or soon after <paramref name="dueTimestamp"/> (a <see cref="Stopwatch.GetTimestamp"/> value).</summary>
    public ValueTask DelayUntilAsync(long dueTimestamp)
    {
        var now = Stopwatch.GetTimestamp();
        if (dueTimestamp <= now)
        {
            return default;
        }
        DelayWaiter waiter;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            waiter = _free.Count > 0 ? _free.Pop() : new DelayWaiter(this);
            _queue.Enqueue(waiter, dueTimestamp);
            if (dueTimestamp < _armedFor)
            {
                Arm(dueTimestamp, now);
            }
        }
        return new ValueTask(waiter, waiter.Version);
    }

    /// <summary>Completes after <paramref name="delay"/>.</summary>
    public ValueTask DelayAsync(TimeSpan delay) => DelayUntilAsync(Stopwatch.GetTimestamp() + TicksOf(delay));

    /// <summary>Wakes every waiter and stops the timer.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            while (_queue.TryDequeue(out var waiter, out _))
            {
                waiter.Complete();
            }
        }
        _timer.Dispose();
    }

    internal void Return(DelayWaiter waiter)
    {
        lock (_lock)
        {
            _free.Push(waiter);
        }
    }

    private void OnTimer()
    {
        lock (_lock)
        {
            var now = Stopwatch.GetTimestamp();
            _armedFor = long.MaxValue;
            while (_queue.TryPeek(out var waiter, out var due) && due <= now)
            {
                // Continuations run asynchronously, so completing under the lock cannot re-enter it.
                _queue.Dequeue();
                waiter.Complete();
            }
            if (_queue.TryPeek(out _, out var next) && !_disposed)
            {
                Arm(next, now);
            }
        }
    }

    private void Arm(long due, long now)
    {
        _armedFor = due;
        var ms = (long)Math.Ceiling((due - now) * 1000.0 / Stopwatch.Frequency);
        _timer.Change(Math.Max(1, ms), Timeout.Infinite);
    }
}
