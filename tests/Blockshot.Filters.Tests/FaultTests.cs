using System.Diagnostics;
using Blockshot.Filters.Fault;

namespace Blockshot.Filters.Tests;

public class FaultTests
{
    private static FaultFilter Fault(BlockNode node, FaultRule rule) => new(node, new FaultState(rule));

    [Fact]
    public async Task Errors_hit_only_the_chosen_kinds_and_range()
    {
        await using var leaf = new MemoryNode(1 << 20);
        var filter = Fault(leaf, new FaultRule(FaultOps.Write, FaultError.Io, Offset: 65536, Length: 4096));
        var data = new byte[4096];
        await filter.WriteAsync(0, data, IoFlags.None);
        await filter.WriteAsync(65536 + 4096, data, IoFlags.None);
        await filter.ReadAsync(65536, data);
        await filter.WriteZeroesAsync(65536, 4096, IoFlags.None);
        var e = await Assert.ThrowsAsync<BlockException>(() => filter.WriteAsync(65536 - 10, data, IoFlags.None).AsTask());
        Assert.Equal(BlockError.Io, e.Error);
        Assert.Contains("injected", e.Message);
        Assert.Equal(1, filter.State.Injected);
        Assert.Equal(1, filter.State.Matched);
    }

    [Fact]
    public async Task No_space_and_flush_faults_carry_their_errors()
    {
        await using var leaf = new MemoryNode(1 << 20);
        var filter = Fault(leaf, new FaultRule(FaultOps.Flush | FaultOps.Zero, FaultError.NoSpace));
        var zero = await Assert.ThrowsAsync<BlockException>(() => filter.WriteZeroesAsync(0, 512, IoFlags.None).AsTask());
        Assert.Equal(BlockError.NoSpace, zero.Error);
        var flush = await Assert.ThrowsAsync<BlockException>(() => filter.FlushAsync().AsTask());
        Assert.Equal(BlockError.NoSpace, flush.Error);
    }

    [Fact]
    public async Task Failed_writes_do_not_reach_the_node_below()
    {
        await using var leaf = new MemoryNode(1 << 20);
        var filter = Fault(leaf, new FaultRule(FaultOps.Write, FaultError.Io));
        await Assert.ThrowsAsync<BlockException>(() => filter.WriteAsync(0, new byte[] { 1, 2, 3 }, IoFlags.None).AsTask());
        var back = new byte[3];
        await leaf.ReadAsync(0, back);
        Assert.Equal(new byte[3], back);
    }

    [Fact]
    public async Task After_and_count_choose_which_requests_fail()
    {
        await using var leaf = new MemoryNode(1 << 20);
        var filter = Fault(leaf, new FaultRule(FaultOps.Read, FaultError.Io, After: 3, Count: 2));
        var outcomes = new List<bool>();
        for (var i = 0; i < 8; i++)
        {
            try
            {
                await filter.ReadAsync(0, new byte[1]);
                outcomes.Add(true);
            }
            catch (BlockException)
            {
                outcomes.Add(false);
            }
        }
        Assert.Equal([true, true, true, false, false, true, true, true], outcomes);
    }

    [Fact]
    public async Task Probability_picks_a_share_of_requests()
    {
        await using var leaf = new MemoryNode(1 << 20);
        var filter = Fault(leaf, new FaultRule(FaultOps.Read, FaultError.Io, Probability: 0.25));
        var failed = 0;
        for (var i = 0; i < 2000; i++)
        {
            try
            {
                await filter.ReadAsync(0, new byte[1]);
            }
            catch (BlockException)
            {
                failed++;
            }
        }
        Assert.InRange(failed, 380, 620);
        Assert.Equal(failed, filter.State.Injected);
    }

    [Fact]
    public async Task Delay_only_rules_slow_requests_but_let_them_succeed()
    {
        await using var leaf = new MemoryNode(1 << 20);
        var filter = Fault(leaf, new FaultRule(FaultOps.Write, FaultError.None, Delay: TimeSpan.FromMilliseconds(60)));
        var clock = Stopwatch.StartNew();
        await filter.WriteAsync(0, new byte[] { 7 }, IoFlags.None);
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(55), $"took {clock.Elapsed.TotalMilliseconds} ms");
        var back = new byte[1];
        await leaf.ReadAsync(0, back);
        Assert.Equal(7, back[0]);
        Assert.Equal(1, filter.State.Injected);
    }

    [Fact]
    public async Task Delayed_failures_wait_then_fail()
    {
        await using var leaf = new MemoryNode(1 << 20);
        var filter = Fault(leaf, new FaultRule(FaultOps.Read, FaultError.Io, Delay: TimeSpan.FromMilliseconds(50)));
        var clock = Stopwatch.StartNew();
        await Assert.ThrowsAsync<BlockException>(() => filter.ReadAsync(0, new byte[1]).AsTask());
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(45));
    }

    [Fact]
    public async Task Requests_the_rule_skips_allocate_nothing()
    {
        await using var leaf = new MemoryNode(1 << 20);
        var filter = Fault(leaf, new FaultRule(FaultOps.Write, FaultError.Io, Offset: 1 << 19, Length: 4096));
        var buffer = new byte[4096];
        for (var i = 0; i < 100; i++)
        {
            // Warm up: the memory node allocates each page on its first write.
            await filter.ReadAsync(i % 16 * 4096L, buffer);
            await filter.WriteAsync(i % 16 * 4096L, buffer, IoFlags.None);
        }
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
        {
            await filter.ReadAsync(i % 16 * 4096L, buffer);
            await filter.WriteAsync(i % 16 * 4096L, buffer, IoFlags.None);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void A_probability_outside_zero_to_one_is_refused() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new FaultState(new FaultRule(FaultOps.All, FaultError.Io, Probability: 1.5)));
}
