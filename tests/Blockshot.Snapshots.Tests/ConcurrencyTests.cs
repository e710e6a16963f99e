using Blockshot.Core;

namespace Blockshot.Snapshots.Tests;

/// <summary>Snapshots taken, read and destroyed while the device is busy.</summary>
public class ConcurrencyTests
{
    private const int Chunk = 64 << 10;

    [Fact]
    public async Task Eight_snapshots_store_each_old_chunk_once_and_destroying_some_leaves_the_rest_intact()
    {
        await using var rig = new Rig(size: 4 << 20);
        await rig.FillAsync(1);
        var before = await Rig.ReadAllAsync(rig.Slot);
        var snaps = new List<Snapshot>();
        for (var i = 0; i < 8; i++)
        {
            snaps.Add(await rig.TakeAsync($"s{i}"));
        }
        await rig.FillAsync(2);
        Assert.Equal(rig.Size, rig.Store.UsedBytes); // once, not eight times
        Assert.All(snaps, s => Assert.Equal(rig.Size / Chunk, s.CopiedChunks));

        // A ninth after the change shares nothing old; the others are untouched by its copies.
        var middle = await Rig.ReadAllAsync(rig.Slot);
        var ninth = await rig.TakeAsync("s8");
        await rig.Slot.WriteAsync(0, Patterns.Make(4 * Chunk, 0, 3), IoFlags.None);
        Assert.Equal(rig.Size + (4L * Chunk), rig.Store.UsedBytes);

        foreach (var victim in new[] { 0, 3, 7, 5 })
        {
            await rig.DestroyAsync(snaps[victim]);
            Assert.Equal(SnapshotState.Destroyed, snaps[victim].State);
            Assert.Equal(rig.Size + (4L * Chunk), rig.Store.UsedBytes);
        }
        foreach (var s in snaps.Where(s => s.State == SnapshotState.Active))
        {
            Assert.Equal(-1, Patterns.FirstDifference(before, await Rig.ReadAllAsync(s.Image)));
        }
        Assert.Equal(-1, Patterns.FirstDifference(middle, await Rig.ReadAllAsync(ninth.Image)));
        foreach (var s in snaps.Where(s => s.State == SnapshotState.Active).ToArray())
        {
            await rig.DestroyAsync(s);
        }
        Assert.Equal(4L * Chunk, rig.Store.UsedBytes);
        Assert.Equal(-1, Patterns.FirstDifference(middle, await Rig.ReadAllAsync(ninth.Image)));
        await rig.DestroyAsync(ninth);
        Assert.Equal(0, rig.Store.UsedBytes);
    }

    [Fact]
    public async Task Destroying_a_snapshot_while_writers_and_readers_are_active_never_gives_wrong_data()
    {
        await using var rig = new Rig(size: 8 << 20);
        await rig.FillAsync(1);
        var before = await Rig.ReadAllAsync(rig.Slot);
        var doomed = await rig.TakeAsync("doomed", new SnapshotOptions { Writable = true });
        var keeper = await rig.TakeAsync("keeper");
        using var stop = new CancellationTokenSource();
        var writers = Enumerable.Range(0, 3).Select(w => Task.Run(async () =>
        {
            var rng = new Random(w);
            var writes = 0;
            while (!stop.IsCancellationRequested)
            {
                var n = rng.Next(1, 150_000);
                var at = rng.NextInt64(0, rig.Size - n);
                await rig.Slot.WriteAsync(at, Patterns.Make(n, at, 100 + w), IoFlags.None);
                writes++;
                await Task.Yield();
            }
            return writes;
        })).ToArray();
        var imageWriter = Task.Run(async () =>
        {
            // Writes to the doomed image: refused once it is destroyed, never anything else.
            var rng = new Random(50);
            var refused = 0;
            while (!stop.IsCancellationRequested)
            {
                var n = rng.Next(1, 20_000);
                var at = rng.NextInt64(0, rig.Size - n);
                try
                {
                    await doomed.Image.WriteAsync(at, new byte[n], IoFlags.None);
                }
                catch (BlockException e) when (e.Error == BlockError.Io && doomed.State == SnapshotState.Destroyed)
                {
                    refused++;
                }
                await Task.Yield();
            }
            return refused;
        });
        Task<(long Good, long Refused)> Reader(Snapshot snap, int seed) => Task.Run(async () =>
        {
            var rng = new Random(seed);
            var buffer = new byte[200_000];
            long good = 0, refused = 0;
            while (!stop.IsCancellationRequested)
            {
                var n = rng.Next(1, buffer.Length);
                var at = rng.NextInt64(0, rig.Size - n);
                try
                {
                    await snap.Image.ReadAsync(at, buffer.AsMemory(0, n));
                }
                catch (BlockException e) when (e.Error == BlockError.Io && snap.State == SnapshotState.Destroyed)
                {
                    refused++;
                    await Task.Yield();
                    continue;
                }
                if (snap == keeper)
                {
                    var diff = Patterns.FirstDifference(before.AsSpan((int)at, n), buffer.AsSpan(0, n));
                    Assert.True(diff < 0, $"{snap.Name} read at {at + diff} saw data written after the take");
                }
                good++;
                await Task.Yield();
            }
            return (good, refused);
        });
        var doomedReaders = new[] { Reader(doomed, 1), Reader(doomed, 2) };
        var keeperReaders = new[] { Reader(keeper, 3), Reader(keeper, 4) };

        await Task.Delay(700);
        await rig.DestroyAsync(doomed);
        Assert.Equal(SnapshotState.Destroyed, doomed.State);
        await Task.Delay(700);
        await stop.CancelAsync();

        Assert.All(await Task.WhenAll(writers), n => Assert.True(n > 0));
        Assert.True(await imageWriter > 0, "no write to the destroyed image was refused");
        Assert.All(await Task.WhenAll(doomedReaders), r => Assert.True(r.Refused > 0, "no read of the destroyed snapshot was refused"));
        Assert.All(await Task.WhenAll(keeperReaders), r => Assert.True(r.Good > 0 && r.Refused == 0));
        Assert.Equal(-1, Patterns.FirstDifference(before, await Rig.ReadAllAsync(keeper.Image)));
        Assert.Equal([keeper], rig.Filter.Snapshots);
        await rig.DestroyAsync(keeper);
        Assert.Equal(0, rig.Store.UsedBytes);
        Assert.Same(rig.Origin, rig.Slot.Current);
    }

    [Fact]
    public async Task Snapshots_taken_in_the_middle_of_a_write_storm_never_see_later_data()
    {
        // Many writers (writes, zeroes, trims) and readers at once; snapshots are taken and destroyed
        // while they run. Each take records the device as it is with the slot drained.
        await using var rig = new Rig(size: 8 << 20);
        await rig.FillAsync(1);
        var views = new List<(Snapshot Snap, byte[] Data)>();
        using var stop = new CancellationTokenSource();
        var writers = Enumerable.Range(0, 5).Select(w => Task.Run(async () =>
        {
            var rng = new Random(w);
            var buffer = new byte[150_000];
            while (!stop.IsCancellationRequested)
            {
                var n = rng.Next(1, buffer.Length);
                var at = rng.NextInt64(0, rig.Size - n);
                switch (rng.Next(6))
                {
                    case 0:
                        await rig.Slot.WriteZeroesAsync(at, n, IoFlags.None);
                        break;
                    case 1:
                        await rig.Slot.TrimAsync(at, n, IoFlags.None);
                        break;
                    default:
                        rng.NextBytes(buffer.AsSpan(0, n));
                        await rig.Slot.WriteAsync(at, buffer.AsMemory(0, n), IoFlags.None);
                        break;
                }
                await Task.Yield();
            }
        })).ToArray();
        var readers = Enumerable.Range(0, 3).Select(r => Task.Run(async () =>
        {
            var rng = new Random(100 + r);
            var buffer = new byte[200_000];
            long verified = 0;
            while (!stop.IsCancellationRequested)
            {
                (Snapshot Snap, byte[] Data) view;
                lock (views)
                {
                    if (views.Count == 0)
                    {
                        view = default;
                    }
                    else
                    {
                        view = views[rng.Next(views.Count)];
                    }
                }
                if (view.Snap is null)
                {
                    await Task.Delay(5);
                    continue;
                }
                var n = rng.Next(1, buffer.Length);
                var at = rng.NextInt64(0, rig.Size - n);
                try
                {
                    await view.Snap.Image.ReadAsync(at, buffer.AsMemory(0, n));
                }
                catch (BlockException) when (view.Snap.State == SnapshotState.Destroyed)
                {
                    continue;
                }
                var diff = Patterns.FirstDifference(view.Data.AsSpan((int)at, n), buffer.AsSpan(0, n));
                Assert.True(diff < 0, $"snapshot {view.Snap.Name} read at {at + diff} saw data written after its take");
                verified++;
                await Task.Yield();
            }
            return verified;
        })).ToArray();

        for (var i = 0; i < 8; i++)
        {
            await Task.Delay(150);
            await rig.Slot.SuspendAsync(TimeSpan.FromSeconds(10));
            Snapshot snap;
            byte[] data;
            try
            {
                data = await Rig.ReadAllAsync(rig.Origin); // drained: this is the instant of the take
                if (rig.Slot.Current != rig.Filter)
                {
                    rig.Slot.Replace(rig.Filter);
                }
                snap = await rig.Filter.AddSnapshotAsync($"storm{i}");
            }
            finally
            {
                rig.Slot.Resume();
            }
            Snapshot? old = null;
            lock (views)
            {
                views.Add((snap, data));
                if (views.Count > 3)
                {
                    old = views[0].Snap;
                    views.RemoveAt(0);
                }
            }
            if (old is not null)
            {
                await rig.Filter.RemoveSnapshotAsync(old);
            }
        }
        await Task.Delay(300);
        await stop.CancelAsync();
        await Task.WhenAll(writers);
        Assert.All(await Task.WhenAll(readers), n => Assert.True(n > 0, "a reader verified nothing"));
        foreach (var (snap, data) in views)
        {
            Assert.Equal(SnapshotState.Active, snap.State);
            Assert.Equal(-1, Patterns.FirstDifference(data, await Rig.ReadAllAsync(snap.Image)));
        }
    }

    [Fact]
    public async Task Discards_and_write_zeroes_during_a_snapshot_copy_first_and_zero_chunks_cost_nothing()
    {
        await using var rig = new Rig(size: 4 << 20);
        await rig.FillAsync(1);
        await rig.Slot.WriteZeroesAsync(2 << 20, 1 << 20, IoFlags.None); // chunks 32..47 hold zeros
        var before = await Rig.ReadAllAsync(rig.Slot);
        var snap = await rig.TakeAsync("discard");

        await rig.Slot.TrimAsync(100, 3 * Chunk, IoFlags.None);                     // partial first and last chunk
        await rig.Slot.WriteZeroesAsync(10 * Chunk, 2 * Chunk, IoFlags.MayTrim);   // whole chunks
        await rig.Slot.WriteZeroesAsync((16 * Chunk) - 7, 14, IoFlags.None);       // a few bytes across a boundary
        await rig.Slot.TrimAsync(2 << 20, 1 << 20, IoFlags.None);                  // chunks that were zero
        Assert.Equal(4 + 2 + 2 + 16, snap.CopiedChunks); // 16 of them zero chunks
        Assert.Equal((4L + 2 + 2) * Chunk, rig.Store.UsedBytes);
        Assert.Equal(-1, Patterns.FirstDifference(before, await Rig.ReadAllAsync(snap.Image)));

        // Once copied, a chunk is not copied again however often it is discarded.
        await rig.Slot.TrimAsync(0, rig.Size, IoFlags.None);
        Assert.Equal(rig.Size / Chunk, snap.CopiedChunks);
        await rig.Slot.TrimAsync(0, rig.Size, IoFlags.None);
        Assert.Equal(rig.Size / Chunk, snap.CopiedChunks);
        Assert.Equal(rig.Size - (1 << 20), rig.Store.UsedBytes);
        Assert.Equal(-1, Patterns.FirstDifference(before, await Rig.ReadAllAsync(snap.Image)));
    }
}
