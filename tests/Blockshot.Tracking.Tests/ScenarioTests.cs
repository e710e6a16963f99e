using Blockshot.Core;
using Blockshot.Core.Platform;
using Blockshot.Drivers;
using Blockshot.Snapshots;
using Blockshot.Snapshots.Storage;
using Blockshot.Tracking.Persistence;

namespace Blockshot.Tracking.Tests;

/// <summary>Tracking scenarios: reference workloads, blksnap's 3000-cbt, foreign writers, clean flags, image writes.</summary>
public class ScenarioTests
{
    [Theory]
    [InlineData(4096)]
    [InlineData(64 << 10)]
    public async Task Incremental_and_differential_sets_over_many_periods_match_a_reference_model(int block)
    {
        // Random writes, zeroes and trims (unaligned, concurrent), a period per snapshot, the sidecar
        // closed and reopened now and then. For every snapshot p and every earlier point n, the set
        // "changed since n" must hold every block whose content differs between the copies at n and p
        // and every block written in between, and nothing else (so overshoot stays within a block).
        const long Size = 8 << 20;
        using var dir = new TempDir();
        var image = dir.File("disk.raw");
        await File.WriteAllBytesAsync(image, Patterns.Make((int)Size, 0, 1));
        var sidecar = dir.File("disk.cbt");
        var (device, tracker) = await OpenAsync(image, sidecar, block);
        var generation = tracker.Generation;
        var copies = new List<byte[]> { await File.ReadAllBytesAsync(image) };          // copies[n]: content at the end of period n (n = 0: start)
        var written = new List<HashSet<long>> { new() };                                // written[n]: blocks written in period n + 1
        var maps = new List<FrozenMap>();
        var rng = new Random(block);
        for (var period = 1; period <= 14; period++)
        {
            var work = Enumerable.Range(0, 3).Select(w => (Rng: new Random(rng.Next()), Blocks: new HashSet<long>())).ToArray();
            await Task.WhenAll(work.Select(w => Task.Run(async () =>
            {
                for (var i = 0; i < w.Rng.Next(3, 25); i++)
                {
                    var n = w.Rng.Next(1, 3 * block);
                    var at = w.Rng.NextInt64(0, Size - n);
                    switch (w.Rng.Next(4))
                    {
                        case 0:
                            await tracker.WriteZeroesAsync(at, n, IoFlags.None);
                            break;
                        case 1:
                            await tracker.TrimAsync(at, n, IoFlags.None);
                            break;
                        default:
                            await tracker.WriteAsync(at, Patterns.Make(n, at, (period * 100) + i), IoFlags.None);
                            break;
                    }
                    for (var b = at / block; b <= (at + n - 1) / block; b++)
                    {
                        w.Blocks.Add(b);
                    }
                }
            })));
            foreach (var w in work)
            {
                written[^1].UnionWith(w.Blocks);
            }
            maps.Add(tracker.AdvancePeriod());
            copies.Add(await File.ReadAllBytesAsync(image));
            written.Add([]);
            if (period % 5 == 0)
            {
                await device.FlushAsync();
                await tracker.CloseAsync();
                await tracker.DisposeAsync();
                await device.DisposeAsync();
                (device, tracker) = await OpenAsync(image, sidecar, block);
                Assert.Equal(generation, tracker.Generation);
            }
        }
        await using (device)
        await using (tracker)
        {
            var blocks = Size / block;
            for (var p = 1; p <= maps.Count; p++)
            {
                for (var since = 0; since < p; since++)
                {
                    var expected = new HashSet<long>();
                    for (var q = since; q < p; q++)
                    {
                        expected.UnionWith(written[q]);
                    }
                    for (long b = 0; b < blocks; b++)
                    {
                        var range = new Range((int)(b * block), (int)((b + 1) * block));
                        var differs = !copies[since].AsSpan(range).SequenceEqual(copies[p].AsSpan(range));
                        var marked = maps[p - 1].ChangedSince(b, (byte)since);
                        Assert.False(differs && !marked, $"snapshot {p} since {since}: block {b} changed but is not in the set");
                        Assert.True(marked == expected.Contains(b), $"snapshot {p} since {since}: block {b} marked={marked}, written={expected.Contains(b)}");
                    }
                }
            }
        }
    }

    [Fact]
    public async Task Blksnap_3000_cbt_the_map_read_at_the_take_stays_frozen_and_mark_dirty_shows()
    {
        await using var device = new MemoryNode(64 << 20);
        await using var tracker = await ChangeTracker.OpenAsync(device, new TrackerOptions());
        var rng = new Random(3000);
        for (var cycle = 0; cycle < 4; cycle++)
        {
            var atTake = tracker.AdvancePeriod();
            var copy = Enumerable.Range(0, (int)atTake.BlockCount).Select(b => atTake[b]).ToArray();

            // 10 MB of writes after the take, then the map read again: unchanged.
            for (var written = 0; written < 10_000_000;)
            {
                var n = rng.Next(4096, 1 << 20);
                await tracker.WriteAsync(rng.NextInt64(0, device.Size - n), new byte[n], IoFlags.None);
                written += n;
                await Task.Yield();
            }
            Assert.Equal(copy, Enumerable.Range(0, (int)atTake.BlockCount).Select(b => atTake[b]).ToArray());

            // mark-dirty of a range (a fallocated file) shows in the next take's map, and only there.
            var at = rng.NextInt64(0, (device.Size - (3 << 20)) / 4096) * 4096;
            await tracker.MarkDirtyAsync(at, 3 << 20);
            var next = tracker.Freeze();
            var since = (byte)(tracker.Period - 1);
            for (var b = at / tracker.BlockSize; b <= (at + (3 << 20) - 1) / tracker.BlockSize; b++)
            {
                Assert.True(next.ChangedSince(b, since), $"cycle {cycle}: block {b} was marked dirty but does not show");
                Assert.False(atTake.ChangedSince(b, since), $"cycle {cycle}: the frozen map changed at block {b}");
            }
        }
        Assert.Throws<BlockException>(() => tracker.MarkDirtyAsync(device.Size - 10, 20).AsTask().GetAwaiter().GetResult());
    }

    [Fact]
    public async Task A_foreign_write_after_an_unclean_stop_starts_a_new_generation_and_says_why()
    {
        using var dir = new TempDir();
        var image = NewImage(dir);
        var (device, tracker) = await OpenAsync(image, dir.File("disk.cbt"));
        var generation = tracker.Generation;
        await tracker.WriteAsync(0, new byte[100], IoFlags.None);
        await tracker.DisposeAsync(); // no close: a crash
        await device.DisposeAsync();

        // Another writer changes the device later than the sidecar's last heartbeat (plus its slack).
        await using (var f = File.OpenWrite(image))
        {
            f.Position = 1 << 20;
            f.WriteByte(7);
        }
        File.SetLastWriteTimeUtc(image, DateTime.UtcNow.AddSeconds(30));

        (device, tracker) = await OpenAsync(image, dir.File("disk.cbt"));
        await using (device)
        await using (tracker)
        {
            Assert.NotEqual(generation, tracker.Generation);
            var info = tracker.Info();
            Assert.Contains("modified afterwards", info.GenerationReason);
            Assert.Equal(0, info.ChangedBlocks); // a new generation: the next backup is a full one
            Assert.Equal(1, tracker.Period);
        }
    }

    [Fact]
    public async Task A_device_replaced_by_another_file_of_the_same_size_starts_a_new_generation()
    {
        using var dir = new TempDir();
        var image = NewImage(dir);
        var (device, tracker) = await OpenAsync(image, dir.File("disk.cbt"));
        var generation = tracker.Generation;
        await tracker.CloseAsync();
        await tracker.DisposeAsync();
        await device.DisposeAsync();

        // Same size, same modification time, another inode: a different device's content.
        var stamp = File.GetLastWriteTimeUtc(image);
        var other = dir.File("other.raw");
        using (var f = File.Create(other))
        {
            f.SetLength(new FileInfo(image).Length);
        }
        File.SetLastWriteTimeUtc(other, stamp);
        File.Move(other, image, overwrite: true);

        (device, tracker) = await OpenAsync(image, dir.File("disk.cbt"));
        await using (device)
        await using (tracker)
        {
            Assert.NotEqual(generation, tracker.Generation);
            Assert.Contains("wrote the device after tracking stopped", tracker.Info().GenerationReason);
        }
    }

    [Fact]
    public async Task An_unclean_stop_of_a_device_that_cannot_show_foreign_writes_starts_a_new_generation()
    {
        using var dir = new TempDir();
        await using var device = new MemoryNode(4 << 20);
        var options = new TrackerOptions { SidecarPath = dir.File("dev.cbt") }; // no identity: like a block device
        var tracker = await ChangeTracker.OpenAsync(device, options);
        var generation = tracker.Generation;
        await tracker.WriteAsync(0, new byte[10], IoFlags.None);
        await tracker.DisposeAsync();
        tracker = await ChangeTracker.OpenAsync(device, options);
        await using (tracker)
        {
            Assert.NotEqual(generation, tracker.Generation);
            Assert.Contains("cannot show", tracker.Info().GenerationReason);
        }
    }

    [Fact]
    public async Task A_clean_shutdown_records_the_clean_flag_and_a_reopen_clears_it()
    {
        using var dir = new TempDir();
        var image = NewImage(dir);
        var sidecar = dir.File("disk.cbt");
        var (device, tracker) = await OpenAsync(image, sidecar);
        Assert.False(ReadHeader(sidecar).Clean);
        await tracker.WriteAsync(5 << 16, new byte[10], IoFlags.None);
        await device.FlushAsync();
        await tracker.CloseAsync();
        await tracker.DisposeAsync();
        await device.DisposeAsync();
        var header = ReadHeader(sidecar);
        Assert.True(header.Clean);
        Assert.Equal(DeviceIdentity.Of(image), header.Identity);

        // Reopened, it is unclean again at once: a crash from here on must not pass for a clean stop.
        (device, tracker) = await OpenAsync(image, sidecar);
        await using (device)
        await using (tracker)
        {
            Assert.False(ReadHeader(sidecar).Clean);
            Assert.Equal(header.Generation, tracker.Generation);
            Assert.Equal(1, tracker.Freeze()[5]);
        }
    }

    [Fact]
    public async Task A_resize_starts_a_new_generation_with_the_reason_and_a_map_of_the_new_size()
    {
        using var dir = new TempDir();
        var image = NewImage(dir);
        var (device, tracker) = await OpenAsync(image, dir.File("disk.cbt"));
        await tracker.WriteAsync(0, new byte[10], IoFlags.None);
        var generation = tracker.Generation;
        await tracker.DisposeAsync(); // unclean, and resized while untracked: both must be caught
        await device.DisposeAsync();
        await using (var f = File.OpenWrite(image))
        {
            f.SetLength(12 << 20);
        }
        (device, tracker) = await OpenAsync(image, dir.File("disk.cbt"));
        await using (device)
        await using (tracker)
        {
            Assert.NotEqual(generation, tracker.Generation);
            Assert.Contains("resized from 8388608 to 12582912", tracker.Info().GenerationReason);
            Assert.Equal(12L << 20, tracker.DeviceSize);
            Assert.Equal((12 << 20) / tracker.BlockSize, tracker.Freeze().BlockCount);
            Assert.Equal(0, tracker.Info().ChangedBlocks);
        }
    }

    [Fact]
    public async Task Writes_to_a_writable_snapshot_image_count_as_changes()
    {
        // The daemon's stack: CBW above tracking; a writable image's writes are marked in the tracker
        // (MarkDirtyAsync, durable before the image write) and land in difference storage only.
        using var dir = new TempDir();
        var image = NewImage(dir);
        var (device, tracker) = await OpenAsync(image, dir.File("disk.cbt"));
        var cbw = new CbwFilter(tracker, new NodeDiffStore(new MemoryNode(64L << 20), 64 << 10, new DiffStoreOptions()));
        await using (device)
        await using (tracker)
        await using (cbw)
        {
            var snap = await cbw.AddSnapshotAsync("w", new SnapshotOptions { Writable = true });
            var atTake = tracker.AdvancePeriod();
            var since = (byte)(tracker.Period - 1);
            var view = new MarkingImage(snap.Image, tracker);
            await view.WriteAsync((3 << 16) + 100, new byte[70_000], IoFlags.None);   // blocks 3 and 4
            await view.WriteZeroesAsync(7 << 16, 10, IoFlags.None);                   // block 7
            await cbw.WriteAsync(10 << 16, new byte[1], IoFlags.None);                 // the device itself: block 10
            var next = tracker.Freeze();
            var changed = Enumerable.Range(0, (int)next.BlockCount).Where(b => next.ChangedSince(b, since)).ToArray();
            Assert.Equal([3, 4, 7, 10], changed);
            Assert.Equal(0, atTake.CountChangedSince(since));

            // Durable: a crash now still shows them.
            await tracker.DisposeAsync();
            await device.DisposeAsync();
            var (device2, tracker2) = await OpenAsync(image, dir.File("disk.cbt"));
            await using (device2)
            await using (tracker2)
            {
                var map = tracker2.Freeze();
                Assert.All(new long[] { 3, 4, 7, 10 }, b => Assert.True(map.ChangedSince(b, since), $"block {b} lost its mark"));
            }
        }
    }

    /// <summary>What the daemon exports for a writable snapshot of a tracked device.</summary>
    private sealed class MarkingImage(SnapshotImage image, ChangeTracker tracker) : FilterNode(image)
    {
        public override string Kind => "marking";

        public override async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, IoFlags flags)
        {
            await tracker.MarkDirtyAsync(offset, data.Length);
            await Next.WriteAsync(offset, data, flags);
        }

        public override async ValueTask WriteZeroesAsync(long offset, long length, IoFlags flags)
        {
            await tracker.MarkDirtyAsync(offset, length);
            await Next.WriteZeroesAsync(offset, length, flags);
        }
    }

    private static MapHeader ReadHeader(string sidecar)
    {
        using var file = MapFile.Open(sidecar);
        return file.ReadHeader() ?? throw new Xunit.Sdk.XunitException("no valid header");
    }

    private static string NewImage(TempDir dir, long size = 8 << 20)
    {
        var path = dir.File("disk.raw");
        using var f = File.Create(path);
        f.SetLength(size);
        return path;
    }

    private static async Task<(RawFileNode Device, ChangeTracker Tracker)> OpenAsync(string image, string sidecar, int block = 64 << 10)
    {
        var device = RawFileNode.Open(image);
        var tracker = await ChangeTracker.OpenAsync(device, new TrackerOptions
        {
            BlockSize = block,
            SidecarPath = sidecar,
            Identity = () => DeviceIdentity.Of(image),
            Heartbeat = TimeSpan.FromMilliseconds(200),
        });
        return (device, tracker);
    }
}
