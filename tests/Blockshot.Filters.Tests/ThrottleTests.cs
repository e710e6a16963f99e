using System.Diagnostics;
using Blockshot.Filters.Throttle;

namespace Blockshot.Filters.Tests;

/// <summary>
/// Pacing measured on the wall clock. The collection runs alone: other tests' busy loops would delay the
/// timer that wakes paced requests. Lower bounds are what a limit guarantees; upper bounds only catch a
/// request that never wakes.
/// </summary>
[Collection(nameof(WallClock))]
public class ThrottleTests
{
    private static ThrottleFilter Throttle(BlockNode node, long bps, long iops, int burstMs = 0) =>
        new(node, new ThrottleState(new ThrottleLimits(bps, iops, TimeSpan.FromMilliseconds(burstMs))));

    [Fact]
    public async Task Bytes_per_second_pace_writes()
    {
        await using var leaf = new MemoryNode(4 << 20);
        var filter = Throttle(leaf, bps: 2 << 20, iops: 0);
        var data = new byte[64 << 10];
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < 16; i++)
        {
            await filter.WriteAsync(i * data.Length, data, IoFlags.None);
        }
        // 1 MiB at 2 MiB/s: the first request goes at once, the other 15/16 MiB take ~0.47 s.
        Assert.InRange(clock.Elapsed.TotalSeconds, 0.4, 30);
        // How many waited depends on scheduling (a late wake-up lets the next request straight through);
        // the elapsed time is what the limit guarantees.
        Assert.True(filter.State.Delayed >= 1, "no request waited");
    }

    [Fact]
    public async Task Requests_per_second_pace_reads_zeroes_and_trims()
    {
        await using var leaf = new MemoryNode(1 << 20);
        var filter = Throttle(leaf, bps: 0, iops: 100);
        var buffer = new byte[512];
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < 10; i++)
        {
            await filter.ReadAsync(0, buffer);
            await filter.WriteZeroesAsync(0, 512, IoFlags.None);
            await filter.TrimAsync(0, 512, IoFlags.None);
        }
        // 30 requests at 100/s: at least 0.29 s.
        Assert.InRange(clock.Elapsed.TotalSeconds, 0.27, 30);
    }

    [Fact]
    public async Task Flushes_are_not_limited()
    {
        await using var leaf = new MemoryNode(1 << 20);
        var filter = Throttle(leaf, bps: 1, iops: 1);
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < 50; i++)
        {
            await filter.FlushAsync();
        }
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"50 flushes took {clock.Elapsed}");
        Assert.Equal(0, filter.State.Delayed);
    }

    [Fact]
    public async Task A_burst_within_the_window_is_not_delayed()
    {
        await using var leaf = new MemoryNode(1 << 20);
        var filter = Throttle(leaf, bps: 10 << 20, iops: 0, burstMs: 100);
        var data = new byte[256 << 10];
        await filter.WriteAsync(0, data, IoFlags.None);
        await filter.WriteAsync(0, data, IoFlags.None);
        Assert.Equal(0, filter.State.Delayed);
    }

    [Fact]
    public async Task Concurrent_requests_share_one_budget()
    {
        await using var leaf = new MemoryNode(8 << 20);
        var filter = Throttle(leaf, bps: 4 << 20, iops: 0);
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, 8).Select(async w =>
        {
            var data = new byte[64 << 10];
            for (var i = 0; i < 4; i++)
            {
                await filter.WriteAsync((w * 4 + i) * (long)data.Length, data, IoFlags.None);
            }
        }));
        // 2 MiB from 8 writers at 4 MiB/s: about half a second, not an eighth of it.
        Assert.InRange(clock.Elapsed.TotalSeconds, 0.4, 30);
    }

    [Fact]
    public async Task The_pass_through_path_allocates_nothing()
    {
        await using var leaf = new MemoryNode(1 << 20);
        var filter = Throttle(leaf, bps: 0, iops: 0);
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
}
