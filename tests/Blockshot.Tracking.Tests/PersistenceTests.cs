using Blockshot.Core;
using Blockshot.Core.Platform;
using Blockshot.Drivers;

namespace Blockshot.Tracking.Tests;

public class PersistenceTests
{
    private const int Block = 64 << 10;

    private static async Task<(RawFileNode Device, ChangeTracker Tracker)> OpenAsync(string image, string sidecar, TimeSpan? lease = null, int durableRegion = 4 << 20)
    {
        var device = RawFileNode.Open(image);
        var tracker = await ChangeTracker.OpenAsync(device, new TrackerOptions
        {
            BlockSize = Block,
            SidecarPath = sidecar,
            Identity = () => DeviceIdentity.Of(image),
            Heartbeat = TimeSpan.FromMilliseconds(200),
            Lease = lease ?? TimeSpan.FromSeconds(10),
            DurableRegionSize = durableRegion,
        });
        return (device, tracker);
    }

    private static string NewImage(TempDir dir, long size = 8 << 20)
    {
        var path = dir.File("disk.raw");
        using var f = File.Create(path);
        f.SetLength(size);
        return path;
    }

    [Fact]
    public async Task A_clean_close_and_reopen_keeps_the_generation_period_and_map()
    {
        using var dir = new TempDir();
        var image = NewImage(dir);
        var (device, tracker) = await OpenAsync(image, dir.File("disk.cbt"));
        Assert.Contains("first attach", tracker.Info().GenerationReason);
        await tracker.WriteAsync(3 * Block, new byte[10], IoFlags.None);
        tracker.AdvancePeriod();
        await tracker.WriteAsync(7 * Block, new byte[10], IoFlags.None);
        var generation = tracker.Generation;
        await device.FlushAsync();
        await tracker.CloseAsync();
        await tracker.DisposeAsync();
        await device.DisposeAsync();

        (device, tracker) = await OpenAsync(image, dir.File("disk.cbt"));
        await using (device)
        await using (tracker)
        {
            Assert.Equal(generation, tracker.Generation);
            Assert.Equal(2, tracker.Period);
            var map = tracker.Freeze();
            Assert.Equal(1, map[3]);
            Assert.Equal(2, map[7]);
            Assert.Equal(0, map[5]);
        }
    }

    [Fact]
    public async Task A_write_after_an_idle_spell_renews_the_heartbeat_so_an_unclean_stop_keeps_the_generation()
    {
        // The timer only beats while writes flow. A block marked already costs its write nothing durable,
        // so without the renewal a stop right after an idle spell would make that write look foreign.
        using var dir = new TempDir();
        var image = NewImage(dir);
        var lease = TimeSpan.FromMilliseconds(800);
        var (device, tracker) = await OpenAsync(image, dir.File("disk.cbt"), lease);
        await tracker.WriteAsync(3 * Block, new byte[10], IoFlags.None);
        var generation = tracker.Generation;
        await Task.Delay(lease * 3);
        await tracker.WriteAsync(3 * Block, new byte[] { 1, 2, 3 }, IoFlags.None);
        await tracker.DisposeAsync(); // no CloseAsync: an unclean stop
        await device.DisposeAsync();

        (device, tracker) = await OpenAsync(image, dir.File("disk.cbt"), lease);
        await using (device)
        await using (tracker)
        {
            Assert.True(generation == tracker.Generation, $"a new generation began: {tracker.Info().GenerationReason}");
            Assert.Equal(1, tracker.Freeze()[3]);
        }
    }

    [Fact]
    public async Task A_write_made_while_untracked_starts_a_new_generation_with_the_reason()
    {
        using var dir = new TempDir();
        var image = NewImage(dir);
        var (device, tracker) = await OpenAsync(image, dir.File("disk.cbt"));
        var generation = tracker.Generation;
        await tracker.CloseAsync();
        await tracker.DisposeAsync();
        await device.DisposeAsync();

        await Task.Delay(50);
        await using (var f = File.OpenWrite(image))
        {
            f.Position = 12345;
            f.WriteByte(1);
        }

        (device, tracker) = await OpenAsync(image, dir.File("disk.cbt"));
        await using (device)
        await using (tracker)
        {
            Assert.NotEqual(generation, tracker.Generation);
            Assert.Contains("something else wrote the device", tracker.Info().GenerationReason);
        }
    }

    [Fact]
    public async Task After_an_unclean_stop_the_map_still_covers_every_acknowledged_write()
    {
        using var dir = new TempDir();
        var image = NewImage(dir);
        var (device, tracker) = await OpenAsync(image, dir.File("disk.cbt"));
        var generation = tracker.Generation;
        var rng = new Random(4);
        var marked = new HashSet<long>();
        for (var i = 0; i < 200; i++)
        {
            var at = rng.NextInt64(0, device.Size - 5000);
            await tracker.WriteAsync(at, new byte[5000], IoFlags.None);
            marked.Add(at / Block);
            marked.Add((at + 4999) / Block);
        }
        // No close: as if the process were killed. (Dispose only drops the file handle.)
        await tracker.DisposeAsync();
        await device.DisposeAsync();

        (device, tracker) = await OpenAsync(image, dir.File("disk.cbt"));
        await using (device)
        await using (tracker)
        {
            Assert.Equal(generation, tracker.Generation);
            var map = tracker.Freeze();
            Assert.All(marked, b => Assert.True(map[b] >= 1, $"block {b} lost its mark"));
        }
    }

    [Fact]
    public async Task First_changes_in_a_region_already_made_durable_wait_for_no_further_flush()
    {
        using var dir = new TempDir();
        var image = NewImage(dir, 16 << 20); // 256 blocks: four 4 MiB regions
        var (device, tracker) = await OpenAsync(image, dir.File("disk.cbt"));
        await using (device)
        await using (tracker)
        {
            await tracker.WriteAsync(0, new byte[4096], IoFlags.None);
            var afterFirst = tracker.Commits;
            Assert.True(afterFirst >= 1, "the first change of the period was not committed");
            for (var block = 1; block < 64; block++)
            {
                await tracker.WriteAsync(block * (long)Block, new byte[4096], IoFlags.None);
            }
            Assert.Equal(afterFirst, tracker.Commits); // the region's mark covered them all
            await tracker.WriteAsync(64L * Block, new byte[4096], IoFlags.None);
            Assert.Equal(afterFirst + 1, tracker.Commits); // the next region needs its own

            tracker.AdvancePeriod();
            await tracker.WriteAsync(3L * Block, new byte[4096], IoFlags.None);
            Assert.Equal(afterFirst + 2, tracker.Commits); // a new period needs the region again
            Assert.Equal(65, tracker.Freeze().CountChangedSince(0)); // the map in memory is exact
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_clean_close_saves_the_exact_map_and_an_unclean_stop_reopens_a_region_superset(bool clean)
    {
        using var dir = new TempDir();
        var image = NewImage(dir, 16 << 20);
        var (device, tracker) = await OpenAsync(image, dir.File("disk.cbt"));
        await tracker.WriteAsync((5L * Block) + 100, new byte[4096], IoFlags.None);
        await tracker.WriteAsync(130L * Block, new byte[4096], IoFlags.None);
        if (clean)
        {
            await device.FlushAsync();
            await tracker.CloseAsync();
        }
        await tracker.DisposeAsync();
        await device.DisposeAsync();

        (device, tracker) = await OpenAsync(image, dir.File("disk.cbt"));
        await using (device)
        await using (tracker)
        {
            var map = tracker.Freeze();
            var marked = Enumerable.Range(0, 256).Where(b => map[b] >= 1).ToList();
            if (clean)
            {
                Assert.Equal([5, 130], marked);
            }
            else
            {
                // Blocks 0-63 and 128-191: the two regions written, whole; nothing else.
                Assert.Equal(Enumerable.Range(0, 64).Concat(Enumerable.Range(128, 64)), marked);
            }
        }
    }

    [Fact]
    public async Task A_resized_device_or_a_changed_block_size_starts_a_new_generation()
    {
        using var dir = new TempDir();
        var image = NewImage(dir);
        var (device, tracker) = await OpenAsync(image, dir.File("disk.cbt"));
        var generation = tracker.Generation;
        await tracker.CloseAsync();
        await tracker.DisposeAsync();
        await device.DisposeAsync();
        await using (var f = File.OpenWrite(image))
        {
            f.SetLength(16 << 20);
        }
        (device, tracker) = await OpenAsync(image, dir.File("disk.cbt"));
        await using (device)
        await using (tracker)
        {
            Assert.NotEqual(generation, tracker.Generation);
            Assert.Contains("resized", tracker.Info().GenerationReason);
        }
    }

    [Fact]
    public async Task A_torn_header_copy_falls_back_to_the_other_one()
    {
        using var dir = new TempDir();
        var image = NewImage(dir);
        var sidecar = dir.File("disk.cbt");
        var (device, tracker) = await OpenAsync(image, sidecar);
        await tracker.WriteAsync(0, new byte[1], IoFlags.None);
        var generation = tracker.Generation;
        await tracker.CloseAsync();
        await tracker.DisposeAsync();
        await device.DisposeAsync();

        // Tear the newest copy (the clean one); the older (unclean, same generation) remains.
        var bytes = await File.ReadAllBytesAsync(sidecar);
        var newest = BitConverter.ToUInt32(bytes, 12) > BitConverter.ToUInt32(bytes, 2048 + 12) ? 0 : 2048;
        bytes[newest + 100] ^= 0xFF;
        await File.WriteAllBytesAsync(sidecar, bytes);

        (device, tracker) = await OpenAsync(image, sidecar);
        await using (device)
        await using (tracker)
        {
            Assert.Equal(generation, tracker.Generation);
            Assert.Equal(1, tracker.Freeze()[0]);
        }
    }
}
