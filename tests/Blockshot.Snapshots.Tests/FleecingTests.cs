using Blockshot.Core;
using Blockshot.Drivers;
using Blockshot.Snapshots.Storage;

namespace Blockshot.Snapshots.Tests;

/// <summary>
/// QEMU's image-fleecing iotest at its own offsets (a 64 MiB disk, 64 KiB clusters), with read-once
/// access as a fleecing reader with discard-source would use it, and blksnap's image-write boundary cases.
/// </summary>
public class FleecingTests
{
    private const int Chunk = 64 << 10;
    private const long DiskSize = 64L << 20;

    // The iotest's patterns, overwrites and the remainder a later read checks, as (byte, offset, length).
    private static readonly (byte Value, long At, int Length)[] Written =
        [(0x5d, 0, 64 << 10), (0xd5, 1 << 20, 64 << 10), (0xdc, 32 << 20, 64 << 10), (0xcd, 0x3ff0000, 64 << 10)];

    private static readonly (byte Value, long At, int Length)[] Overwrites =
    [
        (0xab, 0x0000000, 64 << 10), // full overwrite of pattern 0
        (0xad, 0x00f8000, 64 << 10), // partial-left: the left half of pattern 1 (1M - 32K .. 1M + 32K)
        (0x1d, 0x2008000, 64 << 10), // partial-right: the right half of pattern 2 (32M + 32K)
        (0xea, 0x3fe0000, 64 << 10), // adjacent-left: the cluster before pattern 3
    ];

    private static readonly (byte Value, long At, int Length)[] Remainder =
        [(0xd5, 0x108000, 32 << 10), (0xdc, 32 << 20, 32 << 10), (0xcd, 0x3ff0000, 64 << 10)];

    [Fact]
    public async Task Fleecing_overwrite_partial_left_partial_right_and_adjacent_clusters()
    {
        await using var rig = new Rig(size: DiskSize);
        foreach (var (value, at, length) in Written)
        {
            await rig.Slot.WriteAsync(at, Fill(value, length), IoFlags.None);
        }
        var snap = await rig.TakeAsync("fleece");
        foreach (var (value, at, length) in Overwrites)
        {
            await rig.Slot.WriteAsync(at, Fill(value, length), IoFlags.None);
        }

        // The snapshot still has every original pattern, and zeros where nothing was written.
        foreach (var (value, at, length) in Written)
        {
            await ExpectAsync(snap.Image, at, Fill(value, length), "snapshot pattern");
        }
        foreach (var (_, at, length) in Overwrites.Where(o => !Written.Any(w => w.At == o.At)))
        {
            var outside = Enumerable.Range(0, length).Where(i => !Written.Any(w => at + i >= w.At && at + i < w.At + w.Length)).ToArray();
            var back = new byte[length];
            await snap.Image.ReadAsync(at, back);
            Assert.All(outside, i => Assert.Equal(0, back[i]));
        }

        // The live device has the overwrites and what they left of the patterns.
        foreach (var (value, at, length) in Overwrites.Concat(Remainder))
        {
            await ExpectAsync(rig.Slot, at, Fill(value, length), "live device");
        }

        // Clusters copied: 0, 15, 16, 512, 513 and 1022; the zero ones (15, 513, 1022) took no space.
        Assert.Equal(6, snap.CopiedChunks);
        Assert.Equal(3L * Chunk, rig.Store.UsedBytes);
    }

    [Fact]
    public async Task A_fleecing_reader_that_discards_what_it_copied_leaves_the_store_empty()
    {
        await using var rig = new Rig(size: DiskSize);
        foreach (var (value, at, length) in Written)
        {
            await rig.Slot.WriteAsync(at, Fill(value, length), IoFlags.None);
        }
        var before = await Rig.ReadAllAsync(rig.Slot);
        var snap = await rig.TakeAsync("fleece");
        foreach (var (value, at, length) in Overwrites)
        {
            await rig.Slot.WriteAsync(at, Fill(value, length), IoFlags.None);
        }
        Assert.True(rig.Store.UsedBytes > 0);

        // A backup job reads each 4 MiB piece and discards it (discard-source).
        var piece = new byte[4 << 20];
        for (long at = 0; at < DiskSize; at += piece.Length)
        {
            await snap.Image.ReadAsync(at, piece);
            Assert.Equal(-1, Patterns.FirstDifference(before.AsSpan((int)at, piece.Length), piece));
            await snap.Image.TrimAsync(at, piece.Length, IoFlags.None);
        }
        Assert.Equal(0, rig.Store.UsedBytes);
        var copied = snap.CopiedChunks;

        // A guest write after the discard copies nothing; a later snapshot read fails.
        await rig.Slot.WriteAsync(5 << 20, Fill(0x77, 3 * Chunk), IoFlags.None);
        Assert.Equal(copied, snap.CopiedChunks);
        Assert.Equal(0, rig.Store.UsedBytes);
        var e = await Assert.ThrowsAsync<BlockException>(() => snap.Image.ReadAsync(5 << 20, new byte[4096]).AsTask());
        Assert.Equal(BlockError.Io, e.Error);
        Assert.Equal(SnapshotState.Active, snap.State);
    }

    [Fact]
    public async Task Image_writes_unaligned_and_across_chunk_boundaries_leave_their_neighbours_alone()
    {
        // blksnap's snapimage_write and boundary cases: 1 KiB-granular writes at 126 KiB and at chunk
        // edges, the first and last sector of chunks, writes straddling two and three chunks, while the
        // origin is written too.
        await using var rig = new Rig(size: 8 << 20, store: new NodeDiffStore(new MemoryNode(64L << 20), Chunk, new DiffStoreOptions()));
        await rig.FillAsync(1);
        var origin = await Rig.ReadAllAsync(rig.Slot);
        var snap = await rig.TakeAsync("w", new SnapshotOptions { Writable = true });
        var expectedImage = (byte[])origin.Clone();
        var expectedOrigin = (byte[])origin.Clone();
        var writes = new List<(long At, int Length)>
        {
            (126 << 10, 1 << 10), (126 << 10, 3 << 10), (Chunk - 1024, 2048), (Chunk - 1, 2), (2 * Chunk, 512),
            ((3 * Chunk) - 512, 512), ((5 * Chunk) - 7, Chunk + 14), ((8 * Chunk) + 1, (2 * Chunk) + 100),
            (rig.Size - 512, 512), (rig.Size - Chunk - 3, Chunk + 3), (1, 1),
        };
        var rng = new Random(61);
        for (var i = 0; i < 60; i++)
        {
            var granule = 1 << 10;
            var at = rng.NextInt64(0, (rig.Size - (200 << 10)) / granule) * granule;
            writes.Add((at + (rng.Next(2) == 0 ? 0 : rng.Next(1, granule)), rng.Next(1, 200 << 10)));
        }
        for (var i = 0; i < writes.Count; i++)
        {
            var (at, length) = writes[i];
            var data = Patterns.Make(length, at, 500 + i);
            await snap.Image.WriteAsync(at, data, IoFlags.None);
            data.CopyTo(expectedImage, at);

            // The origin moves on at a nearby place at the same time.
            var originAt = Math.Min(rig.Size - length, at + (Chunk / 2));
            var other = Patterns.Make(length, originAt, 900 + i);
            await rig.Slot.WriteAsync(originAt, other, IoFlags.None);
            other.CopyTo(expectedOrigin, originAt);

            if (i % 10 == 0)
            {
                Assert.Equal(-1, Patterns.FirstDifference(expectedImage, await Rig.ReadAllAsync(snap.Image)));
            }
        }
        Assert.Equal(-1, Patterns.FirstDifference(expectedImage, await Rig.ReadAllAsync(snap.Image)));
        Assert.Equal(-1, Patterns.FirstDifference(expectedOrigin, await Rig.ReadAllAsync(rig.Slot)));

        // Concurrent image and origin writers to disjoint halves, then both checked.
        var imageTask = Task.Run(async () =>
        {
            var r = new Random(1);
            for (var i = 0; i < 200; i++)
            {
                var length = r.Next(1, 70_000);
                var at = r.NextInt64(0, (rig.Size / 2) - length);
                var data = Patterns.Make(length, at, 3000 + i);
                await snap.Image.WriteAsync(at, data, IoFlags.None);
                data.CopyTo(expectedImage, at);
                await Task.Yield();
            }
        });
        var originTask = Task.Run(async () =>
        {
            var r = new Random(2);
            for (var i = 0; i < 200; i++)
            {
                var length = r.Next(1, 70_000);
                var at = r.NextInt64(rig.Size / 2, rig.Size - length);
                var data = Patterns.Make(length, at, 4000 + i);
                await rig.Slot.WriteAsync(at, data, IoFlags.None);
                data.CopyTo(expectedOrigin, at);
                await Task.Yield();
            }
        });
        await Task.WhenAll(imageTask, originTask);
        Assert.Equal(-1, Patterns.FirstDifference(expectedImage, await Rig.ReadAllAsync(snap.Image)));
        Assert.Equal(-1, Patterns.FirstDifference(expectedOrigin, await Rig.ReadAllAsync(rig.Slot)));
    }

    private static byte[] Fill(byte value, int length) => Enumerable.Repeat(value, length).ToArray();

    private static async Task ExpectAsync(BlockNode node, long at, byte[] expected, string what)
    {
        var back = new byte[expected.Length];
        await node.ReadAsync(at, back);
        var diff = Patterns.FirstDifference(expected, back);
        Assert.True(diff < 0, $"{what}: byte {at + diff} is 0x{(diff < 0 ? 0 : back[diff]):x2}, expected 0x{(diff < 0 ? 0 : expected[diff]):x2}");
    }
}
