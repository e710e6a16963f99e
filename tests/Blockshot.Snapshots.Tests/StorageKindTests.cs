using Blockshot.Core;
using Blockshot.Snapshots.Storage;

namespace Blockshot.Snapshots.Tests;

/// <summary>Every kind of difference storage: growth in steps, events, overflow, reuse, content.</summary>
public class StorageKindTests
{
    private const int Chunk = StorageKinds.Chunk;

    private static DiffStoreOptions Sizing(int limitChunks) => new()
    {
        InitialBytes = 2L * Chunk,
        GrowStepBytes = 2L * Chunk,
        LimitBytes = (long)limitChunks * Chunk,
        LowSpaceFraction = 0.3,
    };

    [Theory]
    [MemberData(nameof(StorageKinds.All), MemberType = typeof(StorageKinds))]
    public async Task Each_kind_grows_by_its_step_to_the_limit_then_overflows_with_events_and_the_origin_survives(string kind)
    {
        using var dir = new TempDir();
        var store = StorageKinds.Create(kind, dir, Sizing(8));
        var events = new List<(string What, DiffStoreEventArgs E)>();
        store.LowSpace += (_, e) => { lock (events) { events.Add(("low", e)); } };
        store.Full += (_, e) => { lock (events) { events.Add(("full", e)); } };
        await using var rig = new Rig(size: 4 << 20, store: store);
        await rig.FillAsync(1);
        var before = await Rig.ReadAllAsync(rig.Slot);
        var snap = await rig.TakeAsync("stretch");
        var failures = new List<SnapshotFailedEventArgs>();
        rig.Filter.SnapshotFailed += (_, e) => failures.Add(e);
        var started = DateTimeOffset.UtcNow;

        // Stretch: one chunk at a time up to the limit. Capacity follows the steps (2, 4, 6, 8 chunks), or is
        // a step ahead while the next one grows in the background (the last chunk of a step is taken).
        for (var k = 1; k <= 8; k++)
        {
            var at = (long)(k - 1) * Chunk;
            await rig.Slot.WriteAsync(at, Patterns.Make(Chunk, at, 2), IoFlags.None);
            Assert.Equal(SnapshotState.Active, snap.State);
            Assert.Equal((long)k * Chunk, store.UsedBytes);
            var steps = (long)((k + 1) / 2 * 2) * Chunk;
            // A RAM tier's backing store also keeps the RAM's 4 chunks free ahead of the writers.
            var most = kind == "tiered" ? Math.Max(steps + (2 * Chunk), (k + 6L) * Chunk) : steps + (2 * Chunk);
            Assert.InRange(store.CapacityBytes, steps, Math.Min(most, 8 * Chunk));
            Assert.DoesNotContain(events, e => e.What == "full");
            if (k <= 4)
            {
                Assert.Empty(events); // well below the 30% threshold
            }
        }
        Assert.Contains(events, e => e.What == "low");
        Assert.Equal(-1, Patterns.FirstDifference(before, await Rig.ReadAllAsync(snap.Image)));

        // Overflow: the next first write cannot be protected. The device takes it; the snapshot breaks.
        var lastAt = 8L * Chunk;
        await rig.Slot.WriteAsync(lastAt, Patterns.Make(3 * Chunk, lastAt, 2), IoFlags.None);
        Assert.Equal(SnapshotState.Failed, snap.State);
        Assert.Contains("full", snap.FailureReason);
        var failure = Assert.Single(failures);
        Assert.Same(snap, failure.Snapshot);
        Assert.InRange(failure.Time, started, DateTimeOffset.UtcNow);
        var full = Assert.Single(events, e => e.What == "full").E;
        var low = events.First(e => e.What == "low").E;
        Assert.InRange(low.Time, started, full.Time);
        Assert.Equal(store.LimitBytes, full.LimitBytes);
        Assert.Equal(8L * Chunk, full.UsedBytes);
        Assert.Equal(BlockError.Io, (await Assert.ThrowsAsync<BlockException>(() => snap.Image.ReadAsync(0, new byte[512]).AsTask())).Error);

        // The device kept every write and keeps working; the broken snapshot's storage is given back.
        await rig.FillAsync(3);
        var expected = new byte[rig.Size];
        Patterns.Fill(expected, 0, 3);
        Assert.Equal(-1, Patterns.FirstDifference(expected, await Rig.ReadAllAsync(rig.Slot)));
        await Waiting.UntilAsync(() => store.UsedBytes == 0, "the failed snapshot's storage was not released");
    }

    [Theory]
    [MemberData(nameof(StorageKinds.All), MemberType = typeof(StorageKinds))]
    public async Task Each_kind_reuses_the_storage_of_chunks_a_reader_discarded(string kind)
    {
        using var dir = new TempDir();
        var store = StorageKinds.Create(kind, dir, Sizing(4));
        await using var rig = new Rig(size: 4 << 20, store: store);
        await rig.FillAsync(1);
        var before = await Rig.ReadAllAsync(rig.Slot);
        var snap = await rig.TakeAsync("once");
        for (var round = 0; round < 3; round++)
        {
            // Copy four chunks (the whole limit), read them as a backup reader would, then discard them.
            var first = round * 4L * Chunk;
            await rig.Slot.WriteAsync(first, Patterns.Make(4 * Chunk, first, 10 + round), IoFlags.None);
            Assert.Equal(SnapshotState.Active, snap.State);
            Assert.Equal(4L * Chunk, store.UsedBytes);
            var read = new byte[4 * Chunk];
            await snap.Image.ReadAsync(first, read);
            Assert.Equal(-1, Patterns.FirstDifference(before.AsSpan((int)first, read.Length), read));
            await snap.Image.TrimAsync(first, 4L * Chunk, IoFlags.None);
            Assert.Equal(0, store.UsedBytes);
            Assert.Equal(BlockError.Io, (await Assert.ThrowsAsync<BlockException>(() => snap.Image.ReadAsync(first, new byte[1]).AsTask())).Error);
        }
        Assert.Equal(4L * Chunk, store.CapacityBytes);
        var rest = new byte[rig.Size - (12L * Chunk)];
        await snap.Image.ReadAsync(12L * Chunk, rest);
        Assert.Equal(-1, Patterns.FirstDifference(before.AsSpan(12 * Chunk), rest));
    }

    [Theory]
    [MemberData(nameof(StorageKinds.All), MemberType = typeof(StorageKinds))]
    public async Task Each_kind_keeps_the_take_under_a_random_workload_and_after_a_flush(string kind)
    {
        using var dir = new TempDir();
        var store = StorageKinds.Create(kind, dir, Sizing(200) with { InitialBytes = 8L * Chunk, GrowStepBytes = 8L * Chunk });
        await using var rig = new Rig(size: 8 << 20, store: store);
        await rig.FillAsync(1);
        var before = await Rig.ReadAllAsync(rig.Slot);
        var snap = await rig.TakeAsync("kind", new SnapshotOptions { Writable = true });
        var image = (byte[])before.Clone();
        var rng = new Random(kind.Length);
        for (var i = 0; i < 150; i++)
        {
            var n = rng.Next(1, 3 * Chunk);
            var at = rng.NextInt64(0, rig.Size - n);
            switch (rng.Next(5))
            {
                case 0:
                    await rig.Slot.WriteZeroesAsync(at, n, IoFlags.None);
                    break;
                case 1:
                    await rig.Slot.TrimAsync(at, n, IoFlags.None);
                    break;
                case 2:
                    var data = Patterns.Make(n, at, 1000 + i);
                    await snap.Image.WriteAsync(at, data, IoFlags.None);
                    data.CopyTo(image, at);
                    break;
                default:
                    await rig.Slot.WriteAsync(at, Patterns.Make(n, at, 2000 + i), IoFlags.None);
                    break;
            }
        }
        Assert.Equal(SnapshotState.Active, snap.State);
        Assert.Equal(-1, Patterns.FirstDifference(image, await Rig.ReadAllAsync(snap.Image)));
        await store.FlushAsync();
        Assert.Equal(-1, Patterns.FirstDifference(image, await Rig.ReadAllAsync(snap.Image)));
        if (store is TieredDiffStore tiered)
        {
            Assert.Equal(0, tiered.RamChunks);
        }
    }

    [Fact]
    public async Task A_directory_store_is_unnamed_and_leaves_nothing_behind()
    {
        using var dir = new TempDir();
        var store = StorageKinds.Create("dir", dir, Sizing(64));
        await using (var rig = new Rig(size: 4 << 20, store: store))
        {
            await rig.FillAsync(1);
            await rig.TakeAsync("tmp");
            await rig.FillAsync(2);
            Assert.Equal(rig.Size, store.UsedBytes);
            Assert.Empty(Directory.EnumerateFileSystemEntries(dir.Path));
        }
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir.Path));
    }
}
