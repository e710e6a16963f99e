namespace Blockshot.Core.Tests;

/// <summary>The conformance suite against the base node and a pass-through filter stack.</summary>
public class ArrayNodeConformanceTests : BlockNodeConformance
{
    protected override bool TrimReadsZero => true;

    protected override ValueTask<BlockNode> CreateNodeAsync(long size) => new(new ArrayNode((int)size));
}

public class PassThroughFilterConformanceTests : BlockNodeConformance
{
    protected override bool TrimReadsZero => true;

    protected override ValueTask<BlockNode> CreateNodeAsync(long size) =>
        new(new PassThroughFilter(new PassThroughFilter(new ArrayNode((int)size))));
}
