using System.Diagnostics;

namespace Blockshot.Filters.Timing;

/// <summary>
/// Paces units (bytes or requests) to a rate with a burst allowance, by the generic cell rate
/// algorithm: a theoretical arrival time advances by <c>units / rate</c> per reservation, and a
/// reservation may start once it lies no more than the burst window ahead of now. Reservations are
/// taken in order, so every caller learns its start time at once and nobody polls.
/// </summary>
public sealed class RatePacer
{
    // Guards every field below.
    private readonly Lock _lock = new();
    private long _rate;
    private long _burstTicks;
    private long _theoreticalArrival;

    /// <summary>Creates a pacer; a rate of 0 means unlimited.</summary>
    public RatePacer(long unitsPerSecond, TimeSpan burst)
    {
        SetRate(unitsPerSecond, burst);
    }

    /// <summary>Units per second; 0 means unlimited.</summary>
    public long Rate
    {
        get
        {
            lock (_lock)
            {
                return _rate;
            }
        }
    }

    /// <summary>Changes the rate and burst window; reservations already made keep their times.</summary>
    public void SetRate(long unitsPerSecond, TimeSpan burst)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(unitsPerSecond);
        ArgumentOutOfRangeException.ThrowIfLessThan(burst, TimeSpan.Zero);
        lock (_lock)
        {
            _rate = unitsPerSecond;
            _burstTicks = DelayQueue.TicksOf(burst);
        }
    }

    /// <summary>
    /// Reserves <paramref name="units"/> and returns the <see cref="Stopwatch"/> timestamp at which
    /// they may be used (at or before <paramref name="now"/> means at once).
    /// </summary>
    public long Reserve(long units, long now)
    {
        lock (_lock)
        {
            if (_rate <= 0 || units <= 0)
            {
                return now;
            }
            var cost = (long)((double)units * Stopwatch.Frequency / _rate);
            var arrival = Math.Max(_theoreticalArrival, now);
            var start = Math.Max(now, arrival - _burstTicks);
            _theoreticalArrival = arrival + cost;
            return start;
        }
    }
}
