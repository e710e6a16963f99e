namespace Blockshot.Filters.Tests;

/// <summary>Tests that measure elapsed time run in this collection, alone.</summary>
[CollectionDefinition(nameof(WallClock), DisableParallelization = true)]
public sealed class WallClock
{
}
