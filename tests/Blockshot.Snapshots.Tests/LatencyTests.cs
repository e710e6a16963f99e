using System.Diagnostics;
using Blockshot.Core;
using Blockshot.Drivers;
using Blockshot.Filters.Throttle;
using Blockshot.Snapshots.Storage;
using Xunit.Abstractions;

namespace Blockshot.Snapshots.Tests;

/// <summary>Wall-clock tests run alone, so the other tests' load does not skew them.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class WallClock
{
    public const string Name = "wall-clock";
}

[Collection(WallClock.Name)]
public class LatencyTests(ITestOutputHelper output)
{
    private const int Chunk = 64 << 10;
    private const long Size = 32L << 20;

    [Fact]
    public async Task A_slow_store_behind_the_tiered_store_does_not_slow_device_writes_while_ram_lasts()
    {
        // Every 4 KiB write lands in a chunk not yet copied, so each one copies 64 KiB. The slow store
        // takes 20 MB/s: about 3 ms per chunk. Measured in the same run: the same workload with a
        // memory store (the baseline) and with the slow store alone (what the RAM tier hides).
        await MeasureAsync(new NodeDiffStore(new MemoryNode(Size), Chunk, new DiffStoreOptions()), 32); // warm-up
        var baseline = await MeasureAsync(new NodeDiffStore(new MemoryNode(Size), Chunk, new DiffStoreOptions()), 400);
        var tiered = await MeasureAsync(new TieredDiffStore(SlowStore(), 2 * Size), 400);
        var slowAlone = await MeasureAsync(SlowStore(), 60);

        var report = $"p50/p99 µs: memory {baseline.P50:0}/{baseline.P99:0}, tiered over 20 MB/s {tiered.P50:0}/{tiered.P99:0}, 20 MB/s alone {slowAlone.P50:0}/{slowAlone.P99:0}";
        output.WriteLine(report);
        Assert.True(slowAlone.P50 >= 2000, $"the throttled store is not slow, so this test proves nothing: {report}");
        Assert.True(tiered.P50 <= (4 * baseline.P50) + 1000, $"median write latency with the tiered store is far from the baseline: {report}");
        Assert.True(tiered.P99 <= (4 * baseline.P99) + 5000, $"p99 write latency with the tiered store is far from the baseline: {report}");
        Assert.True(tiered.P50 * 5 < slowAlone.P50, $"the RAM tier did not hide the slow store: {report}");
    }

    private static NodeDiffStore SlowStore()
    {
        var throttle = new ThrottleFilter(new MemoryNode(Size), new ThrottleState(new ThrottleLimits(20_000_000, 0, TimeSpan.FromMilliseconds(5))));
        return new NodeDiffStore(throttle, Chunk, new DiffStoreOptions());
    }

    private static async Task<(double P50, double P99)> MeasureAsync(DiffStore store, int writes)
    {
        await using var rig = new Rig(size: Size, store: store);
        await rig.FillAsync(1);
        await rig.TakeAsync("lat");
        var chunks = Enumerable.Range(0, (int)(Size / Chunk)).OrderBy(c => (c * 7919) % 512).Take(writes).ToArray();
        var data = Patterns.Make(4096, 0, 2);
        var micros = new double[chunks.Length];
        for (var i = 0; i < chunks.Length; i++)
        {
            var start = Stopwatch.GetTimestamp();
            await rig.Slot.WriteAsync(((long)chunks[i] * Chunk) + 8192, data, IoFlags.None);
            micros[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
            await Task.Yield();
        }
        Assert.Equal(SnapshotState.Active, rig.Filter.Snapshots[0].State);
        Array.Sort(micros);
        return (micros[micros.Length / 2], micros[(int)(micros.Length * 0.99)]);
    }
}
