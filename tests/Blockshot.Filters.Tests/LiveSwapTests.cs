using Blockshot.Filters.Throttle;

namespace Blockshot.Filters.Tests;

/// <summary>The filters as live-swap subjects: inserted into and removed from a slot under verified load.</summary>
public class LiveSwapTests
{
    [Fact]
    public async Task Throttle_and_fault_go_in_and_out_100_times_under_verified_load_without_an_error()
    {
        const int Size = 8 << 20;
        await using var leaf = new MemoryNode(Size);
        await using var slot = new Slot(leaf, name: "live");
        using var stop = new CancellationTokenSource();
        var workers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            var rng = new Random(w);
            var stripe = Size / 4;
            var model = new byte[stripe];
            var buffer = new byte[8192];
            long ops = 0;
            while (!stop.IsCancellationRequested)
            {
                var offset = rng.Next(0, stripe - buffer.Length);
                if (rng.Next(2) == 0)
                {
                    rng.NextBytes(buffer);
                    await slot.WriteAsync(w * (long)stripe + offset, buffer, IoFlags.None);
                    buffer.CopyTo(model.AsSpan(offset));
                }
                else
                {
                    await slot.ReadAsync(w * (long)stripe + offset, buffer);
                    Assert.Equal(-1, Patterns.FirstDifference(model.AsSpan(offset, buffer.Length), buffer));
                }
                ops++;
            }
            return ops;
        })).ToArray();

        var throttle = FilterCatalog.Create("throttle", new Dictionary<string, string> { ["bps"] = "1G", ["iops"] = "500000" });
        var fault = FilterCatalog.Create("fault", new Dictionary<string, string> { ["error"] = "none", ["delay-ms"] = "1", ["probability"] = "0.05" });
        for (var i = 0; i < 100; i++)
        {
            var template = i % 2 == 0 ? throttle : fault;
            await slot.SwapAsync(current => template.Create(current), TimeSpan.FromSeconds(5));
            await Task.Delay(1);
            await slot.SwapAsync(current => ((FilterNode)current).Next, TimeSpan.FromSeconds(5));
        }
        await stop.CancelAsync();
        var done = await Task.WhenAll(workers);
        Assert.Same(leaf, slot.Current);
        Assert.All(done, ops => Assert.True(ops > 100, $"a worker made only {ops} requests"));
        Assert.True(fault.Counters["matched"] > 0, "no request ever went through the fault filter");
    }

    [Fact]
    public async Task Removing_a_filter_leaves_the_node_below_usable()
    {
        await using var leaf = new MemoryNode(1 << 20);
        var filter = new ThrottleFilter(leaf, new ThrottleState(new ThrottleLimits(0, 0, TimeSpan.Zero)));
        await filter.DisposeAsync();
        await leaf.WriteAsync(0, new byte[] { 9 }, IoFlags.None);
        var back = new byte[1];
        await leaf.ReadAsync(0, back);
        Assert.Equal(9, back[0]);
    }
}
