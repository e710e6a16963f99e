using Blockshot.Drivers;
using Blockshot.Filters.Fault;
using Blockshot.Snapshots.Storage;

namespace Blockshot.Snapshots.Tests;

/// <summary>The tiered store's flusher racing with frees (read-once discards, destroyed snapshots).</summary>
public class TieredStoreTests
{
    private const int Chunk = 64 << 10;

    // A disk tier whose every write takes 300 ms, so the flusher is caught in the middle of one.
    private static (TieredDiffStore Store, FaultState Disk) SlowTiered(int ramChunks)
    {
        var disk = new FaultState(new FaultRule(FaultOps.Write, FaultError.None, Delay: TimeSpan.FromMilliseconds(300)));
        var backing = new NodeDiffStore(new FaultFilter(new MemoryNode(64L << 20), disk), Chunk, new DiffStoreOptions());
        return (new TieredDiffStore(backing, (long)ramChunks * Chunk), disk);
    }

    [Fact]
    public async Task Freeing_the_chunk_being_flushed_does_not_leave_flushes_waiting_forever()
    {
        var (store, disk) = SlowTiered(8);
        await using (store)
        {
            var slot = await store.AllocateAsync();
            await store.WriteAsync(slot, 0, Patterns.Make(Chunk, 0, 1));
            await Waiting.UntilAsync(() => disk.Injected == 1, "the flusher did not start");
            await store.FreeAsync(slot); // a reader discarded it while it was on its way down
            await store.FlushAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(0, store.RamChunks);
        }
    }

    [Fact]
    public async Task A_slot_freed_and_reused_while_its_old_data_is_flushed_keeps_the_new_data()
    {
        var (store, disk) = SlowTiered(8);
        await using (store)
        {
            var slot = await store.AllocateAsync();
            var old = Patterns.Make(Chunk, 0, 1);
            await store.WriteAsync(slot, 0, old);
            await Waiting.UntilAsync(() => disk.Injected == 1, "the flusher did not start");
            await store.FreeAsync(slot);
            var again = await store.AllocateAsync();
            Assert.Equal(slot, again); // the freed slot is the one reused
            var fresh = Patterns.Make(Chunk, 0, 2);
            await store.WriteAsync(again, 0, fresh);

            await store.FlushAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            var back = new byte[Chunk];
            await store.ReadAsync(again, 0, back);
            Assert.True(Patterns.FirstDifference(fresh, back) < 0, "the reused slot reads the data of its previous owner");
        }
    }
}
