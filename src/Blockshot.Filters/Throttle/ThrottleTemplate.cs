using Blockshot.Core;

namespace Blockshot.Filters.Throttle;

/// <summary>A configured throttle; its <see cref="ThrottleState"/> outlives stack rebuilds.</summary>
public sealed class ThrottleTemplate : FilterTemplate
{
    internal static readonly FilterTypeInfo Info = new("throttle", "Limits bytes and requests per second (a token bucket with a burst window)",
    [
        new("bps", "bytes per second, reads and writes together (e.g. 50M); 0 = unlimited", "0"),
        new("iops", "requests per second (flushes excluded); 0 = unlimited", "0"),
        new("burst-ms", "how many milliseconds of the rate may pass at once before requests wait", "100"),
    ]);

    private ThrottleTemplate(ThrottleLimits limits, IReadOnlyDictionary<string, string> settings)
        : base("throttle", settings)
    {
        State = new ThrottleState(limits);
    }

    /// <summary>The pacing state every node built from this template shares.</summary>
    public ThrottleState State { get; }

    /// <inheritdoc/>
    public override IReadOnlyDictionary<string, long> Counters => new Dictionary<string, long> { ["delayed"] = State.Delayed };

    /// <summary>Makes a template from limits.</summary>
    public static ThrottleTemplate Of(ThrottleLimits limits)
    {
        ArgumentNullException.ThrowIfNull(limits);
        return new ThrottleTemplate(limits, new Dictionary<string, string>
        {
            ["bps"] = limits.BytesPerSecond.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["iops"] = limits.IopsPerSecond.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["burst-ms"] = ((long)limits.Burst.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
    }

    internal static ThrottleTemplate Parse(IReadOnlyDictionary<string, string> settings)
    {
        var reader = new SettingsReader(Info, settings);
        var bps = reader.Size("bps");
        var iops = reader.Count("iops");
        var burst = reader.Count("burst-ms");
        if (burst > 60_000)
        {
            throw reader.Error("burst-ms: at most 60000");
        }
        return new ThrottleTemplate(new ThrottleLimits(bps, iops, TimeSpan.FromMilliseconds(burst)), reader.Effective);
    }

    /// <inheritdoc/>
    public override FilterNode Create(BlockNode next) => new ThrottleFilter(next, State);
}
