using Blockshot.Filters.Fault;
using Blockshot.Filters.Throttle;

namespace Blockshot.Filters.Tests;

/// <summary>Every filter, configured so it lets requests through, behaves exactly like the node below.</summary>
public class UnlimitedThrottleConformanceTests : BlockNodeConformance
{
    protected override ValueTask<BlockNode> CreateNodeAsync(long size) =>
        new(Owning.Wrap(new MemoryNode(size), n => new ThrottleFilter(n, new ThrottleState(new ThrottleLimits(0, 0, ThrottleLimits.DefaultBurst)))));
}

public class GenerousThrottleConformanceTests : BlockNodeConformance
{
    // Limits high enough that the suite finishes quickly, low enough that some requests wait.
    protected override ValueTask<BlockNode> CreateNodeAsync(long size) =>
        new(Owning.Wrap(new MemoryNode(size), n => new ThrottleFilter(n, new ThrottleState(new ThrottleLimits(2L << 30, 200_000, TimeSpan.FromMilliseconds(5))))));
}

public class PassiveFaultConformanceTests : BlockNodeConformance
{
    protected override ValueTask<BlockNode> CreateNodeAsync(long size) =>
        new(Owning.Wrap(new MemoryNode(size), n => new FaultFilter(n, new FaultState(new FaultRule(FaultOps.All, FaultError.Io, Probability: 0)))));
}

public class StackedFiltersConformanceTests : BlockNodeConformance
{
    protected override ValueTask<BlockNode> CreateNodeAsync(long size) =>
        new(Owning.Wrap(new MemoryNode(size), n => new FaultFilter(
            new ThrottleFilter(n, new ThrottleState(new ThrottleLimits(0, 0, TimeSpan.Zero))),
            new FaultState(new FaultRule(FaultOps.All, FaultError.None, Delay: TimeSpan.FromMilliseconds(1), Probability: 0.01)))));
}

/// <summary>Filters never own what they sit on, so the suite disposes the leaf through this wrapper.</summary>
internal sealed class Owning(BlockNode top, BlockNode leaf) : FilterNode(top, Ownership.Dispose)
{
    public override string Kind => "owning";

    public static BlockNode Wrap(BlockNode leaf, Func<BlockNode, BlockNode> build) => new Owning(build(leaf), leaf);

    protected override async ValueTask DisposeCoreAsync()
    {
        await base.DisposeCoreAsync();
        await leaf.DisposeAsync();
    }
}
