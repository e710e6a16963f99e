using Blockshot.Core;

namespace Blockshot.Filters.Fault;

/// <summary>
/// A fault rule and its counters, shared by every <see cref="FaultFilter"/> built from one template.
/// Counters change only through interlocked operations; the rule never changes.
/// </summary>
public sealed class FaultState
{
    private long _matched;
    private long _injected;

    /// <summary>Creates the state for <paramref name="rule"/>.</summary>
    public FaultState(FaultRule rule)
    {
        ArgumentNullException.ThrowIfNull(rule);
        if (rule.Probability is < 0 or > 1 || double.IsNaN(rule.Probability))
        {
            throw new ArgumentOutOfRangeException(nameof(rule), "probability must lie between 0 and 1");
        }
        Rule = rule;
    }

    /// <summary>The rule.</summary>
    public FaultRule Rule { get; }

    /// <summary>Requests that matched the rule's kinds and range.</summary>
    public long Matched => Volatile.Read(ref _matched);

    /// <summary>Requests disturbed (failed or delayed).</summary>
    public long Injected => Volatile.Read(ref _injected);

    internal FaultAction Decide(FaultOps op, long offset, long length)
    {
        var rule = Rule;
        if ((rule.Ops & op) == 0 || (op != FaultOps.Flush && !rule.Overlaps(offset, length)))
        {
            return FaultAction.Pass;
        }
        if (Interlocked.Increment(ref _matched) <= rule.After)
        {
            return FaultAction.Pass;
        }
        if (rule.Probability < 1.0 && Random.Shared.NextDouble() >= rule.Probability)
        {
            return FaultAction.Pass;
        }
        while (true)
        {
            var injected = Volatile.Read(ref _injected);
            if (rule.Count > 0 && injected >= rule.Count)
            {
                return FaultAction.Pass;
            }
            if (Interlocked.CompareExchange(ref _injected, injected + 1, injected) == injected)
            {
                break;
            }
        }
        var delay = rule.Delay > TimeSpan.Zero;
        return rule.Error == FaultError.None
            ? (delay ? FaultAction.Delay : FaultAction.Pass)
            : (delay ? FaultAction.DelayThenFail : FaultAction.Fail);
    }

    internal BlockException Failure(FaultOps op, long offset, long length)
    {
        var (error, text) = Rule.Error == FaultError.NoSpace
            ? (BlockError.NoSpace, "no space left")
            : (BlockError.Io, "I/O error");
        return new BlockException(error, $"injected {text} (fault filter) on {op.ToString().ToLowerInvariant()} of {length} bytes at {offset}");
    }
}
