namespace Blockshot.Core.Tests;

public class RangeLockTests
{
    [Fact]
    public async Task Overlapping_exclusive_holders_wait_and_disjoint_ones_do_not()
    {
        var locks = new RangeLock();
        var first = await locks.AcquireAsync(0, 100);
        var disjoint = locks.AcquireAsync(100, 100);
        Assert.True(disjoint.IsCompleted);
        var overlapping = locks.AcquireAsync(50, 100).AsTask();
        await Task.Delay(20);
        Assert.False(overlapping.IsCompleted);
        first.Dispose();
        (await disjoint).Dispose();
        (await overlapping.WaitAsync(TimeSpan.FromSeconds(5))).Dispose();
        Assert.Equal(0, locks.HeldCount);
    }

    [Fact]
    public async Task Shared_holders_coexist_but_exclude_exclusive_ones()
    {
        var locks = new RangeLock();
        var r1 = await locks.AcquireAsync(0, 100, shared: true);
        var r2 = await locks.AcquireAsync(50, 100, shared: true);
        Assert.False(locks.TryAcquire(60, 10, shared: false, out _));
        var writer = locks.AcquireAsync(60, 10).AsTask();
        r1.Dispose();
        await Task.Delay(10);
        Assert.False(writer.IsCompleted);
        r2.Dispose();
        (await writer.WaitAsync(TimeSpan.FromSeconds(5))).Dispose();
    }

    [Fact]
    public async Task Contended_counter_is_never_corrupted()
    {
        var locks = new RangeLock();
        var counters = new int[4];
        var tasks = Enumerable.Range(0, 16).Select(t => Task.Run(async () =>
        {
            for (var i = 0; i < 500; i++)
            {
                var slot = (t + i) % counters.Length;
                using var held = await locks.AcquireAsync(slot * 10, 10);
                var v = counters[slot];
                await Task.Yield();
                counters[slot] = v + 1;
            }
        }));
        await Task.WhenAll(tasks);
        Assert.Equal(16 * 500, counters.Sum());
    }

    [Fact]
    public async Task Releasing_a_handle_twice_throws()
    {
        var locks = new RangeLock();
        var h = await locks.AcquireAsync(0, 1);
        h.Dispose();
        Assert.Throws<InvalidOperationException>(h.Dispose);
    }
}
