using System.Diagnostics;
using Blockshot.Filters.Timing;

namespace Blockshot.Filters.Tests;

[Collection(nameof(WallClock))]
public class TimingTests
{
    private static readonly long Second = Stopwatch.Frequency;

    [Fact]
    public void Pacer_lets_a_burst_through_then_spaces_reservations_by_cost()
    {
        var pacer = new RatePacer(1000, TimeSpan.FromMilliseconds(100));
        var now = 10 * Second;
        // 100 units fit the 100 ms burst window of a 1000/s rate.
        Assert.Equal(now, pacer.Reserve(50, now));
        Assert.Equal(now, pacer.Reserve(50, now));
        Assert.Equal(now, pacer.Reserve(100, now));
        // The next 100 units wait 100 ms more.
        Assert.Equal(now + Second / 10, pacer.Reserve(100, now));
        Assert.Equal(now + 2 * Second / 10, pacer.Reserve(100, now));
    }

    [Fact]
    public void Pacer_forgets_debt_after_idle_time_but_not_beyond_the_burst()
    {
        var pacer = new RatePacer(1000, TimeSpan.Zero);
        var now = 10 * Second;
        Assert.Equal(now, pacer.Reserve(1000, now));
        Assert.Equal(now + Second, pacer.Reserve(1, now));
        var later = now + 60 * Second;
        Assert.Equal(later, pacer.Reserve(1000, later));
        Assert.Equal(later + Second, pacer.Reserve(1000, later));
    }

    [Fact]
    public void Pacer_with_rate_zero_never_waits_and_rate_changes_apply()
    {
        var pacer = new RatePacer(0, TimeSpan.Zero);
        var now = 5 * Second;
        Assert.Equal(now, pacer.Reserve(long.MaxValue / 4, now));
        pacer.SetRate(10, TimeSpan.Zero);
        Assert.Equal(now, pacer.Reserve(10, now));
        Assert.Equal(now + Second, pacer.Reserve(10, now));
        Assert.Equal(10, pacer.Rate);
    }

    [Fact]
    public async Task Delay_queue_wakes_waiters_in_deadline_order_and_not_early()
    {
        using var queue = new DelayQueue();
        var start = Stopwatch.GetTimestamp();
        var order = new List<int>();
        var tasks = new[] { 80, 20, 50 }.Select(async ms =>
        {
            await queue.DelayUntilAsync(start + ms * Second / 1000);
            var elapsed = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            Assert.True(elapsed >= ms - 1, $"woke after {elapsed} ms, wanted {ms}");
            lock (order)
            {
                order.Add(ms);
            }
        }).ToArray();
        await Task.WhenAll(tasks);
        Assert.Equal([20, 50, 80], order);
        Assert.Equal(0, queue.Pending);
    }

    [Fact]
    public async Task Delay_queue_completes_past_deadlines_at_once_and_reuses_waiters()
    {
        using var queue = new DelayQueue();
        var past = queue.DelayUntilAsync(Stopwatch.GetTimestamp() - 1);
        Assert.True(past.IsCompletedSuccessfully);
        await past;
        for (var round = 0; round < 3; round++)
        {
            await Task.WhenAll(Enumerable.Range(0, 200).Select(i => queue.DelayAsync(TimeSpan.FromMilliseconds(1 + i % 5)).AsTask()));
        }
        Assert.Equal(0, queue.Pending);
    }

    [Fact]
    public async Task Disposing_the_queue_releases_every_waiter()
    {
        var queue = new DelayQueue();
        var waiting = Task.Run(async () => await queue.DelayAsync(TimeSpan.FromHours(1)));
        while (queue.Pending == 0)
        {
            await Task.Delay(1);
        }
        queue.Dispose();
        await waiting.WaitAsync(TimeSpan.FromSeconds(5));
    }
}
