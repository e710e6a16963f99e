using Blockshot.Core;
using Blockshot.Drivers;
using Blockshot.Snapshots.Storage;

namespace Blockshot.Snapshots.Tests;

public class CbwTests
{
    [Fact]
    public async Task A_snapshot_keeps_the_data_of_the_take_while_the_device_moves_on()
    {
        await using var rig = new Rig();
        await rig.FillAsync(1);
        var before = await Rig.ReadAllAsync(rig.Slot);
        var snap = await rig.TakeAsync("s1");
        await rig.FillAsync(2);
        await rig.Slot.WriteZeroesAsync(100_000, 300_000, IoFlags.MayTrim);
        await rig.Slot.TrimAsync(5 << 20, 1 << 20, IoFlags.None);
        Assert.Equal(-1, Patterns.FirstDifference(before, await Rig.ReadAllAsync(snap.Image)));
        var now = await Rig.ReadAllAsync(rig.Slot);
        Assert.NotEqual(-1, Patterns.FirstDifference(before, now));
        Assert.Equal(rig.Size / (64 << 10), snap.CopiedChunks);
    }

    [Fact]
    public async Task Chunks_already_copied_pass_straight_through_and_zero_chunks_take_no_space()
    {
        await using var rig = new Rig();
        await rig.Slot.WriteAsync(0, Patterns.Make(65536, 0, 1), IoFlags.None);
        var snap = await rig.TakeAsync("s");
        await rig.Slot.WriteAsync(10, new byte[] { 1 }, IoFlags.None);
        await rig.Slot.WriteAsync(20, new byte[] { 2 }, IoFlags.None);
        Assert.Equal(1, snap.CopiedChunks);
        Assert.Equal(65536, rig.Store.UsedBytes);
        await rig.Slot.WriteAsync(1 << 20, new byte[] { 3 }, IoFlags.None); // the chunk was all zeros
        Assert.Equal(2, snap.CopiedChunks);
        Assert.Equal(65536, rig.Store.UsedBytes);
        var b = new byte[1];
        await snap.Image.ReadAsync(1 << 20, b);
        Assert.Equal(0, b[0]);
    }

    [Fact]
    public async Task Several_snapshots_share_one_copy_and_each_keeps_its_own_view()
    {
        await using var rig = new Rig();
        await rig.FillAsync(1);
        var v1 = await Rig.ReadAllAsync(rig.Slot);
        var a = await rig.TakeAsync("a");
        var b = await rig.TakeAsync("b");
        await rig.Slot.WriteAsync(0, Patterns.Make(65536, 0, 9), IoFlags.None);
        Assert.Equal(65536, rig.Store.UsedBytes); // one copy, shared by a and b
        var v2 = await Rig.ReadAllAsync(rig.Slot);
        var c = await rig.TakeAsync("c");
        await rig.Slot.WriteAsync(0, Patterns.Make(131072, 0, 10), IoFlags.None);
        Assert.Equal(-1, Patterns.FirstDifference(v1, await Rig.ReadAllAsync(a.Image)));
        Assert.Equal(-1, Patterns.FirstDifference(v1, await Rig.ReadAllAsync(b.Image)));
        Assert.Equal(-1, Patterns.FirstDifference(v2, await Rig.ReadAllAsync(c.Image)));

        await rig.DestroyAsync(b);
        Assert.Equal(-1, Patterns.FirstDifference(v1, await Rig.ReadAllAsync(a.Image)));
        Assert.Equal(-1, Patterns.FirstDifference(v2, await Rig.ReadAllAsync(c.Image)));
        await Assert.ThrowsAsync<BlockException>(() => b.Image.ReadAsync(0, new byte[1]).AsTask());
        await rig.DestroyAsync(a);
        await rig.DestroyAsync(c);
        Assert.Equal(0, rig.Store.UsedBytes);
        Assert.Same(rig.Origin, rig.Slot.Current);
    }

    [Fact]
    public async Task Eight_snapshots_each_see_their_own_instant()
    {
        await using var rig = new Rig(size: 2 << 20);
        var views = new List<(Snapshot, byte[])>();
        for (var i = 0; i < 8; i++)
        {
            var rng = new Random(i);
            for (var k = 0; k < 5; k++)
            {
                var at = rng.NextInt64(0, rig.Size - 70000);
                await rig.Slot.WriteAsync(at, Patterns.Make(rng.Next(1, 70000), at, i * 10 + k), IoFlags.None);
            }
            views.Add((await rig.TakeAsync($"s{i}"), await Rig.ReadAllAsync(rig.Slot)));
        }
        await rig.FillAsync(99);
        foreach (var (snap, view) in views)
        {
            Assert.Equal(-1, Patterns.FirstDifference(view, await Rig.ReadAllAsync(snap.Image)));
        }
    }

    [Fact]
    public async Task Qemu_fleecing_patterns_overwrite_partial_left_partial_right_adjacent()
    {
        // The cluster-boundary cases of the classic fleecing test, at 64 KiB chunks.
        await using var rig = new Rig();
        var patterns = new (long At, int Length, byte Value)[]
        {
            (0x00000, 0x10000, 0x01), (0x100000, 0x10000, 0x02), (0x20000, 0x10000, 0x03), (0x3fe0000, 0x10000, 0x04),
        };
        foreach (var p in patterns)
        {
            await rig.Slot.WriteAsync(p.At % rig.Size, Enumerable.Repeat(p.Value, p.Length).ToArray(), IoFlags.None);
        }
        var before = await Rig.ReadAllAsync(rig.Slot);
        var snap = await rig.TakeAsync("fleece");
        var overwrites = new (long At, int Length, byte Value)[]
        {
            (0x00000, 0x10000, 0x5d), // overwrite a whole cluster
            (0x0f000, 0x02000, 0xd5), // partial left: straddles the end of cluster 0
            (0x2f000, 0x02000, 0xdc), // partial right: straddles the start of cluster 3
            (0x100000, 0x20000, 0xcd), // two adjacent clusters at once
        };
        foreach (var o in overwrites)
        {
            await rig.Slot.WriteAsync(o.At, Enumerable.Repeat(o.Value, o.Length).ToArray(), IoFlags.None);
        }
        Assert.Equal(-1, Patterns.FirstDifference(before, await Rig.ReadAllAsync(snap.Image)));
    }

    [Fact]
    public async Task Racing_writers_never_leak_new_data_into_the_snapshot()
    {
        await using var rig = new Rig(size: 16 << 20);
        await rig.FillAsync(1);
        var before = await Rig.ReadAllAsync(rig.Slot);
        var snap = await rig.TakeAsync("race");
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(4));
        var writers = Enumerable.Range(0, 6).Select(w => Task.Run(async () =>
        {
            var rng = new Random(w);
            var buffer = new byte[200_000];
            while (!stop.IsCancellationRequested)
            {
                var n = rng.Next(1, buffer.Length);
                var at = rng.NextInt64(0, rig.Size - n);
                rng.NextBytes(buffer.AsSpan(0, n));
                await rig.Slot.WriteAsync(at, buffer.AsMemory(0, n), IoFlags.None);
                await Task.Yield(); // memory completes synchronously; a real device would not
            }
        })).ToArray();
        var readers = Enumerable.Range(0, 4).Select(r => Task.Run(async () =>
        {
            var rng = new Random(100 + r);
            var buffer = new byte[300_000];
            long reads = 0;
            while (!stop.IsCancellationRequested)
            {
                var n = rng.Next(1, buffer.Length);
                var at = rng.NextInt64(0, rig.Size - n);
                await snap.Image.ReadAsync(at, buffer.AsMemory(0, n));
                var diff = Patterns.FirstDifference(before.AsSpan((int)at, n), buffer.AsSpan(0, n));
                Assert.True(diff < 0, $"snapshot read at {at + diff} saw data written after the take");
                reads++;
                await Task.Yield();
            }
            return reads;
        })).ToArray();
        await Task.WhenAll(writers);
        Assert.All(await Task.WhenAll(readers), n => Assert.True(n > 0));
        Assert.Equal(-1, Patterns.FirstDifference(before, await Rig.ReadAllAsync(snap.Image)));
    }

    [Fact]
    public async Task Sector_pattern_test_the_image_always_verifies_after_random_rewrites()
    {
        // Every 512-byte sector carries its offset, a sequence number and a CRC of the rest.
        const int Sector = 512;
        await using var rig = new Rig(size: 4 << 20);
        var sector = new byte[Sector];
        for (long s = 0; s < rig.Size / Sector; s++)
        {
            WriteSector(sector, s * Sector, 0);
            await rig.Slot.WriteAsync(s * Sector, sector, IoFlags.None);
        }
        var snap = await rig.TakeAsync("pattern");
        var rng = new Random(7);
        for (var round = 1; round <= 5; round++)
        {
            for (var i = 0; i < 400; i++)
            {
                var s = rng.NextInt64(0, rig.Size / Sector);
                WriteSector(sector, s * Sector, round);
                await rig.Slot.WriteAsync(s * Sector, sector, IoFlags.None);
            }
            var image = await Rig.ReadAllAsync(snap.Image);
            for (var s = 0; s < image.Length / Sector; s++)
            {
                var (offset, sequence, ok) = ReadSector(image.AsSpan(s * Sector, Sector));
                Assert.True(ok, $"sector {s} fails its CRC");
                Assert.Equal((long)s * Sector, offset);
                Assert.Equal(0, sequence);
            }
        }
    }

    private static void WriteSector(byte[] sector, long offset, int sequence)
    {
        BitConverter.TryWriteBytes(sector.AsSpan(0), offset);
        BitConverter.TryWriteBytes(sector.AsSpan(8), sequence);
        Patterns.Fill(sector.AsSpan(16, sector.Length - 20), offset, sequence);
        BitConverter.TryWriteBytes(sector.AsSpan(sector.Length - 4), Crc32.Hash(sector.AsSpan(0, sector.Length - 4)));
    }

    private static (long Offset, int Sequence, bool Ok) ReadSector(ReadOnlySpan<byte> sector) =>
        (BitConverter.ToInt64(sector), BitConverter.ToInt32(sector[8..]),
         Crc32.Hash(sector[..^4]) == BitConverter.ToUInt32(sector[^4..]));

    [Fact]
    public async Task The_device_through_an_active_filter_passes_the_conformance_model()
    {
        await using var rig = new Rig(size: 4 << 20);
        var snap = await rig.TakeAsync("s");
        var model = new ReferenceModel((int)rig.Size);
        var rng = new Random(3);
        for (var i = 0; i < 300; i++)
        {
            var n = rng.Next(1, 200_000);
            var at = rng.NextInt64(0, rig.Size - n);
            switch (rng.Next(3))
            {
                case 0:
                    var data = Patterns.Make(n, at, i);
                    await rig.Slot.WriteAsync(at, data, IoFlags.None);
                    model.Write(at, data);
                    break;
                case 1:
                    await rig.Slot.WriteZeroesAsync(at, n, IoFlags.MayTrim);
                    model.Zero(at, n);
                    break;
                default:
                    var back = new byte[n];
                    await rig.Slot.ReadAsync(at, back);
                    model.Verify(at, back, $"read {i}");
                    break;
            }
        }
        Assert.True((await Rig.ReadAllAsync(snap.Image)).All(b => b == 0), "the snapshot of an empty device changed");
    }

    [Fact]
    public async Task A_resize_is_refused_while_snapshots_exist()
    {
        await using var rig = new Rig();
        await rig.TakeAsync("s");
        var e = await Assert.ThrowsAsync<BlockException>(() => rig.Slot.ResizeAsync(16 << 20).AsTask());
        Assert.Equal(BlockError.NotSupported, e.Error);
    }

    [Fact]
    public void Chunk_size_must_be_a_power_of_two()
    {
        var origin = new MemoryNode(1 << 20);
        var store = new NodeDiffStore(new MemoryNode(1 << 30), 48 << 10, new DiffStoreOptions());
        Assert.Throws<ArgumentException>(() => new CbwFilter(origin, store));
    }
}
