namespace Blockshot.Daemon.Mirror;

/// <summary>How a mirror job runs.</summary>
/// <param name="Pivot">Swap the target in as the device's leaf once converged.</param>
/// <param name="Granularity">Bytes per dirty-map bit (a power of two).</param>
/// <param name="ChunkSize">Bytes per copy request.</param>
/// <param name="Parallel">Copy requests in flight at once.</param>
/// <param name="SuspendTimeout">How long the final drain may take before it is retried.</param>
/// <param name="MaxSweeps">Sweeps over the dirty map before the rest is copied with the device suspended.</param>
internal sealed record MirrorOptions(
    bool Pivot,
    int Granularity = 64 << 10,
    int ChunkSize = 1 << 20,
    int Parallel = 4,
    TimeSpan SuspendTimeout = default,
    int MaxSweeps = 16)
{
    /// <summary>The granularity to use for a device of <paramref name="size"/> bytes: at most 2^24 chunks.</summary>
    public static int GranularityFor(long size, int wanted)
    {
        var granularity = wanted;
        while (size / granularity > 1 << 24 && granularity < 1 << 26)
        {
            granularity <<= 1;
        }
        return granularity;
    }
}
