using Blockshot.Core;

namespace Blockshot.Filters.Fault;

/// <summary>A configured fault filter; its <see cref="FaultState"/> (rule and counters) outlives stack rebuilds.</summary>
public sealed class FaultTemplate : FilterTemplate
{
    internal static readonly FilterTypeInfo Info = new("fault", "Injects errors and delays into chosen requests (for testing error paths)",
    [
        new("error", "what to inject: eio, enospc, or none (delay only)", "eio"),
        new("ops", "request kinds, comma-separated: read, write, zero, trim, flush, all", "all"),
        new("offset", "start of the byte range requests must overlap (e.g. 1M)", "0"),
        new("length", "length of that range; 0 = to the end of the device", "0"),
        new("probability", "share of matching requests disturbed, 0 to 1", "1"),
        new("delay-ms", "milliseconds a disturbed request waits before it proceeds or fails", "0"),
        new("after", "matching requests let through before the rule starts", "0"),
        new("count", "most requests disturbed; 0 = no limit", "0"),
    ]);

    private FaultTemplate(FaultRule rule, IReadOnlyDictionary<string, string> settings)
        : base("fault", settings)
    {
        State = new FaultState(rule);
    }

    /// <summary>The rule and counters every node built from this template shares.</summary>
    public FaultState State { get; }

    /// <inheritdoc/>
    public override IReadOnlyDictionary<string, long> Counters =>
        new Dictionary<string, long> { ["matched"] = State.Matched, ["injected"] = State.Injected };

    internal static FaultTemplate Parse(IReadOnlyDictionary<string, string> settings)
    {
        var reader = new SettingsReader(Info, settings);
        var error = reader.Text("error") switch
        {
            "eio" => FaultError.Io,
            "enospc" => FaultError.NoSpace,
            "none" => FaultError.None,
            var other => throw reader.Error($"error: '{other}' is not one of eio, enospc, none"),
        };
        var ops = FaultOps.None;
        foreach (var word in reader.Text("ops").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            ops |= word switch
            {
                "read" => FaultOps.Read,
                "write" => FaultOps.Write,
                "zero" => FaultOps.Zero,
                "trim" => FaultOps.Trim,
                "flush" => FaultOps.Flush,
                "all" => FaultOps.All,
                _ => throw reader.Error($"ops: '{word}' is not one of read, write, zero, trim, flush, all"),
            };
        }
        if (ops == FaultOps.None)
        {
            throw reader.Error("ops: name at least one request kind");
        }
        var delay = reader.Count("delay-ms");
        if (delay > 600_000)
        {
            throw reader.Error("delay-ms: at most 600000");
        }
        var rule = new FaultRule(ops, error, reader.Size("offset"), reader.Size("length"), reader.Fraction("probability"),
            TimeSpan.FromMilliseconds(delay), reader.Count("after"), reader.Count("count"));
        return new FaultTemplate(rule, reader.Effective);
    }

    /// <inheritdoc/>
    public override FilterNode Create(BlockNode next) => new FaultFilter(next, State);
}
