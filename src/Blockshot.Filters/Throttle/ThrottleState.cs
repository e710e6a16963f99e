using System.Diagnostics;
using Blockshot.Filters.Timing;

namespace Blockshot.Filters.Throttle;

/// <summary>
/// The pacing state of a throttle, shared by every <see cref="ThrottleFilter"/> built from one
/// template, so a stack rebuilt around the filter keeps its budget. Thread-safe.
/// </summary>
public sealed class ThrottleState
{
    private readonly RatePacer _bytes;
    private readonly RatePacer _iops;
    private long _delayed;

    /// <summary>Creates the state for <paramref name="limits"/>.</summary>
    public ThrottleState(ThrottleLimits limits)
    {
        ArgumentNullException.ThrowIfNull(limits);
        Limits = limits;
        _bytes = new RatePacer(limits.BytesPerSecond, limits.Burst);
        _iops = new RatePacer(limits.IopsPerSecond, limits.Burst);
    }

    /// <summary>The limits.</summary>
    public ThrottleLimits Limits { get; }

    /// <summary>Requests that had to wait.</summary>
    public long Delayed => Volatile.Read(ref _delayed);

    /// <summary>Reserves one request of <paramref name="bytes"/>; returns when it may start.</summary>
    public long Reserve(long bytes, out long now)
    {
        now = Stopwatch.GetTimestamp();
        var due = Math.Max(_bytes.Reserve(bytes, now), _iops.Reserve(1, now));
        if (due > now)
        {
            Interlocked.Increment(ref _delayed);
        }
        return due;
    }
}
