using Blockshot.Snapshots.Cbw;

namespace Blockshot.Snapshots.Tests;

public class SlotRefCountsTests
{
    [Fact]
    public void Counts_add_and_release_per_slot_and_report_when_none_is_left()
    {
        var refs = new SlotRefCounts();
        Assert.Equal(0, refs[7]);
        Assert.Equal(3, refs.Add(7, 3));
        Assert.Equal(1, refs.Add(8, 1));
        Assert.False(refs.Release(7));
        Assert.False(refs.Release(7));
        Assert.Equal(1, refs[7]);
        Assert.True(refs.Release(7));
        Assert.Equal(0, refs[7]);
        Assert.Equal(1, refs[8]);
        // A release of a slot with no reference left never goes negative.
        Assert.True(refs.Release(7));
        Assert.Equal(0, refs[7]);
    }

    [Fact]
    public void Memory_grows_in_pages_up_to_the_highest_slot_used_and_far_slots_of_a_multi_store_work()
    {
        var refs = new SlotRefCounts();
        Assert.Equal(0, refs.MemoryBytes);
        refs.Add(0, 1);
        var onePage = refs.MemoryBytes;
        Assert.Equal((16384 * 4) + 8, onePage);
        for (long slot = 0; slot < 16384; slot++)
        {
            refs.Add(slot, 1);
        }
        Assert.Equal(onePage, refs.MemoryBytes);
        // A multi store's second store numbers its slots from 2^28.
        var far = (1L << 28) + 5;
        refs.Add(far, 2);
        Assert.Equal(2, refs[far]);
        Assert.Equal(2, refs[0]);
        Assert.Equal(2 * 16384 * 4, refs.MemoryBytes - (((1L << 28) / 16384 + 1) * 8));
        Assert.Equal(0, refs[far - 1]);
        Assert.Equal(0, refs[(1L << 40) + 3]);
    }

    [Fact]
    public async Task Concurrent_adds_and_releases_on_fresh_pages_lose_no_count()
    {
        var refs = new SlotRefCounts();
        const int Threads = 4;
        const int SlotsPerThread = 40_000; // several pages each, created while the others grow the directory
        await Task.WhenAll(Enumerable.Range(0, Threads).Select(t => Task.Run(() =>
        {
            for (long i = 0; i < SlotsPerThread; i++)
            {
                var slot = (i * Threads) + t;
                refs.Add(slot, 4);
                refs.Add(slot % 1000, 1);
            }
        })));
        for (long slot = 0; slot < Threads * SlotsPerThread; slot++)
        {
            var expected = 4 + (slot < 1000 ? Threads * SlotsPerThread / 1000 : 0);
            Assert.Equal(expected, refs[slot]);
        }
        var freed = 0;
        await Task.WhenAll(Enumerable.Range(0, Threads).Select(_ => Task.Run(() =>
        {
            // Slot 0 holds 4 + 160 references: the threads drop them all between them.
            for (var i = 0; i < (4 + (Threads * SlotsPerThread / 1000)) / Threads; i++)
            {
                if (refs.Release(0))
                {
                    Interlocked.Increment(ref freed);
                }
            }
        })));
        Assert.Equal(1, freed);
        Assert.Equal(0, refs[0]);
    }
}
