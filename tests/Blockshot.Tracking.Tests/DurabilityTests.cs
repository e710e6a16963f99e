using Blockshot.Core;
using Blockshot.Drivers;
using Microsoft.Win32.SafeHandles;

namespace Blockshot.Tracking.Tests;

/// <summary>
/// Write-ahead marking under concurrency: no write reaches the device before its block's mark is in
/// the sidecar, including a write to a block another writer has just marked (in memory) and whose
/// commit is still running. A node under the tracker reads the sidecar at the moment each write arrives.
/// </summary>
public class DurabilityTests
{
    private const int Block = 64 << 10;

    [Theory]
    [InlineData(Block)] // every mark durable on its own
    [InlineData(4 << 20)] // 64 blocks per durable region (the default)
    public async Task No_write_reaches_the_device_before_its_mark_is_in_the_sidecar(int durableRegion)
    {
        using var dir = new TempDir();
        var sidecar = dir.File("dev.cbt");
        await using var device = new MemoryNode(8 << 20);
        var witness = new SidecarWitness(device, sidecar);
        await using var tracker = await ChangeTracker.OpenAsync(witness, new TrackerOptions { BlockSize = Block, SidecarPath = sidecar, DurableRegionSize = durableRegion });
        witness.Tracker = tracker;
        witness.Open();
        for (var period = 0; period < 25; period++)
        {
            // Four writers hammer the same three blocks: the first write of each block in the period
            // commits its mark; the others must not overtake that commit.
            var writers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
            {
                var rng = new Random((period * 10) + w);
                for (var i = 0; i < 12; i++)
                {
                    // Two blocks in the first 4 MiB region and one in the second.
                    var block = rng.Next(3) switch { 0 => 5, 1 => 6, _ => 70 };
                    await tracker.WriteAsync((block * (long)Block) + rng.Next(Block - 100), new byte[100], IoFlags.None);
                    await Task.Yield();
                }
            }));
            await Task.WhenAll(writers);
            tracker.AdvancePeriod();
        }
        witness.Dispose();
        Assert.True(witness.Checked > 1000, $"only {witness.Checked} writes were checked");
        Assert.True(witness.Violations.IsEmpty, $"{witness.Violations.Count} writes reached the device before their mark was in the sidecar, e.g. {witness.Violations.FirstOrDefault()}");
    }

    /// <summary>Checks, for each write that arrives, that the sidecar already holds its blocks' marks.</summary>
    private sealed class SidecarWitness(BlockNode next, string sidecar) : FilterNode(next), IDisposable
    {
        private SafeFileHandle? _file;
        private long _checked;

        public ChangeTracker? Tracker { get; set; }

        public System.Collections.Concurrent.ConcurrentBag<string> Violations { get; } = [];

        public long Checked => Interlocked.Read(ref _checked);

        public override string Kind => "witness";

        public void Open() => _file = File.OpenHandle(sidecar, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);

        public override ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, IoFlags flags)
        {
            if (_file is not null && Tracker is { } tracker)
            {
                var period = tracker.Period;
                Span<byte> mark = stackalloc byte[1];
                for (var block = offset / Block; block <= (offset + data.Length - 1) / Block; block++)
                {
                    // The sidecar: 4 KiB of headers, then one byte per block.
                    RandomAccess.Read(_file, mark, 4096 + block);
                    if (mark[0] < period)
                    {
                        Violations.Add($"block {block} written in period {period} with sidecar mark {mark[0]}");
                    }
                }
                Interlocked.Increment(ref _checked);
            }
            return Next.WriteAsync(offset, data, flags);
        }

        public void Dispose() => _file?.Dispose();
    }
}
