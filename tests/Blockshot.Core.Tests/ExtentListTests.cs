using Blockshot.Core.Extents;

namespace Blockshot.Core.Tests;

public class ExtentListTests
{
    [Fact]
    public void Adjacent_runs_with_equal_flags_merge_and_runs_clip_at_the_limit()
    {
        var list = new ExtentList(2);
        list.Reset(1000, 500);
        list.Add(100, AllocationFlags.Data);
        list.Add(100, AllocationFlags.Data);
        list.Add(50, AllocationFlags.HoleZero);
        list.Add(10000, AllocationFlags.Data);
        Assert.Equal(3, list.Count);
        Assert.Equal(new Extent(1000, 200, 0), list[0]);
        Assert.Equal(new Extent(1200, 50, 3), list[1]);
        Assert.Equal(new Extent(1250, 250, 0), list[2]);
        Assert.True(list.IsFull);
        Assert.Equal(1500, list.End);
    }

    [Fact]
    public void The_run_cap_stops_new_runs_but_lets_the_last_grow()
    {
        var list = new ExtentList();
        list.Reset(0, 1000, maxCount: 1);
        list.Add(10, 0);
        Assert.False(list.IsFull);
        list.Add(10, 0);
        list.Add(10, 1);
        Assert.True(list.IsFull);
        Assert.Single(list.Items.ToArray());
        Assert.Equal(20, list[0].Length);
    }
}
