namespace Blockshot.Core.Tests;

public class SlotTests
{
    [Fact]
    public async Task Read_only_slot_refuses_writes_with_read_only()
    {
        await using var slot = new Slot(new ArrayNode(4096), readOnly: true);
        var e = await Assert.ThrowsAsync<BlockException>(() => slot.WriteAsync(0, new byte[1], IoFlags.None).AsTask());
        Assert.Equal(BlockError.ReadOnly, e.Error);
        e = await Assert.ThrowsAsync<BlockException>(() => slot.WriteZeroesAsync(0, 1, IoFlags.None).AsTask());
        Assert.Equal(BlockError.ReadOnly, e.Error);
        e = await Assert.ThrowsAsync<BlockException>(() => slot.TrimAsync(0, 1, IoFlags.None).AsTask());
        Assert.Equal(BlockError.ReadOnly, e.Error);
        Assert.False(slot.Capabilities.CanWrite);
    }

    [Fact]
    public async Task Bad_flags_and_oversized_requests_are_invalid()
    {
        await using var slot = new Slot(new ArrayNode(4 << 20));
        var e = await Assert.ThrowsAsync<BlockException>(() => slot.WriteAsync(0, new byte[1], IoFlags.FastZero).AsTask());
        Assert.Equal(BlockError.Invalid, e.Error);
        e = await Assert.ThrowsAsync<BlockException>(() => slot.ReadAsync(0, new byte[(1 << 20) + 1]).AsTask());
        Assert.Equal(BlockError.Invalid, e.Error);
    }

    [Fact]
    public async Task Suspend_drains_in_flight_requests_and_holds_new_ones()
    {
        var node = new ArrayNode(4096);
        var release = new TaskCompletionSource();
        var entered = new TaskCompletionSource();
        node.BeforeRead = async () =>
        {
            entered.TrySetResult();
            await release.Task;
        };
        await using var slot = new Slot(node);
        var inFlight = slot.ReadAsync(0, new byte[10]).AsTask();
        await entered.Task;

        var suspend = slot.SuspendAsync(TimeSpan.FromSeconds(10));
        await Task.Delay(30);
        Assert.False(suspend.IsCompleted, "suspend completed while a request was in flight");

        node.BeforeRead = null;
        release.SetResult();
        await suspend;
        await inFlight;
        Assert.Equal(0, slot.InFlight);

        var held = slot.ReadAsync(0, new byte[10]).AsTask();
        await Task.Delay(30);
        Assert.False(held.IsCompleted, "a request ran while suspended");
        slot.Resume();
        await held.WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task Suspend_times_out_and_leaves_the_slot_running()
    {
        var node = new ArrayNode(4096);
        var release = new TaskCompletionSource();
        node.BeforeRead = () => release.Task;
        await using var slot = new Slot(node);
        var stuck = slot.ReadAsync(0, new byte[1]).AsTask();
        await Assert.ThrowsAsync<TimeoutException>(() => slot.SuspendAsync(TimeSpan.FromMilliseconds(50)));
        Assert.False(slot.IsSuspended);
        release.SetResult();
        await stuck;
        node.BeforeRead = null;
        await slot.ReadAsync(0, new byte[1]);
    }

    [Fact]
    public async Task Held_requests_go_to_the_replacement_stack()
    {
        var bottom = new ArrayNode(4096);
        await using var slot = new Slot(bottom);
        await slot.WriteAsync(0, new byte[] { 1, 2, 3 }, IoFlags.None);
        await slot.SuspendAsync(TimeSpan.FromSeconds(5));
        var held = slot.ReadAsync(0, new byte[3]).AsTask();
        var buffer = new byte[3];
        var heldRead = slot.ReadAsync(0, buffer).AsTask();
        Assert.Same(bottom, slot.Replace(new XorFilter(bottom, 0xFF)));
        slot.Resume();
        await heldRead;
        await held;
        Assert.Equal(new byte[] { 0xFE, 0xFD, 0xFC }, buffer);
        Assert.Equal("xor → array", slot.Describe());
    }

    [Fact]
    public async Task Replace_requires_a_suspended_slot()
    {
        await using var slot = new Slot(new ArrayNode(4096));
        Assert.Throws<InvalidOperationException>(() => slot.Replace(new ArrayNode(4096)));
        Assert.Throws<InvalidOperationException>(slot.Resume);
    }

    [Fact]
    public async Task Filters_swapped_in_and_out_under_load_never_fail_a_request()
    {
        const int Size = 1 << 20;
        var bottom = new ArrayNode(Size);
        await using var slot = new Slot(bottom);
        using var stop = new CancellationTokenSource();
        var model = new byte[Size];
        var workers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            var rng = new Random(w);
            var buffer = new byte[4096];
            var stripe = Size / 4;
            long ops = 0;
            while (!stop.IsCancellationRequested)
            {
                var offset = w * stripe + rng.Next(0, stripe - 4096);
                if (rng.Next(2) == 0)
                {
                    rng.NextBytes(buffer);
                    await slot.WriteAsync(offset, buffer, IoFlags.None);
                    buffer.CopyTo(model.AsSpan(offset));
                }
                else
                {
                    await slot.ReadAsync(offset, buffer);
                    Assert.Equal(-1, Patterns.FirstDifference(model.AsSpan(offset, 4096), buffer));
                }
                if (++ops % 32 == 0)
                {
                    await Task.Yield(); // real devices complete asynchronously; these never would
                }
            }
            return ops;
        })).ToArray();

        for (var i = 0; i < 100; i++)
        {
            await Task.Delay(1);
            await slot.SwapAsync(current => new PassThroughFilter(current), TimeSpan.FromSeconds(5));
            await slot.SwapAsync(current => ((FilterNode)current).Next, TimeSpan.FromSeconds(5));
        }
        stop.Cancel();
        var done = await Task.WhenAll(workers);
        Assert.Same(bottom, slot.Current);
        Assert.All(done, ops => Assert.True(ops > 0));
    }
}
