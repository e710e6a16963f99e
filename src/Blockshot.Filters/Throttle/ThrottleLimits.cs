namespace Blockshot.Filters.Throttle;

/// <summary>The limits of a <see cref="ThrottleFilter"/>. Zero means unlimited.</summary>
/// <param name="BytesPerSecond">Read and written bytes per second, together.</param>
/// <param name="IopsPerSecond">Requests per second (reads, writes, write-zeroes and trims; flushes are free).</param>
/// <param name="Burst">How far ahead of the rate a burst may run before requests wait.</param>
public sealed record ThrottleLimits(long BytesPerSecond, long IopsPerSecond, TimeSpan Burst)
{
    /// <summary>The default burst window: 100 ms of the rate.</summary>
    public static readonly TimeSpan DefaultBurst = TimeSpan.FromMilliseconds(100);
}
