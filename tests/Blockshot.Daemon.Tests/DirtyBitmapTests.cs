using Blockshot.Daemon.Mirror;

namespace Blockshot.Daemon.Tests;

public class DirtyBitmapTests
{
    [Fact]
    public void Marks_cover_every_chunk_a_range_touches()
    {
        var map = new DirtyBitmap(1 << 20, 4096);
        map.Mark(4095, 2);
        Assert.Equal(2, map.DirtyChunks);
        map.Mark(0, 1);
        Assert.Equal(2, map.DirtyChunks);
        long cursor = 0;
        Assert.True(map.TakeNext(ref cursor, 16, out var first, out var count));
        Assert.Equal((0, 2), (first, count));
        Assert.False(map.TakeNext(ref cursor, 16, out _, out _));
        Assert.True(map.IsEmpty);
    }

    [Fact]
    public void Takes_are_bounded_by_the_maximum_and_walk_across_words()
    {
        var map = new DirtyBitmap(1 << 30, 65536);
        map.Mark(60 * 65536L, 10 * 65536L);
        var runs = new List<(long, int)>();
        long cursor = 0;
        while (map.TakeNext(ref cursor, 3, out var first, out var count))
        {
            runs.Add((first, count));
        }
        Assert.Equal([(60, 3), (63, 1), (64, 3), (67, 3)], runs);
        Assert.Equal(0, map.DirtyChunks);
    }

    [Fact]
    public void The_last_partial_chunk_is_marked_and_marks_past_the_end_are_ignored()
    {
        var map = new DirtyBitmap(10000, 4096);
        Assert.Equal(3, map.Chunks);
        map.Mark(9999, 1);
        map.Mark(20000, 5);
        Assert.Equal(1, map.DirtyChunks);
        Assert.Equal(4096, map.DirtyBytes);
        map.MarkAll();
        Assert.Equal(10000, map.DirtyBytes);
    }

    [Fact]
    public async Task Concurrent_marks_during_takes_are_never_lost()
    {
        var map = new DirtyBitmap(64L << 20, 4096);
        var chunks = (int)map.Chunks;
        var marked = new int[chunks];
        var taken = new int[chunks];
        using var stop = new CancellationTokenSource();
        var writers = Enumerable.Range(0, 4).Select(w => Task.Run(() =>
        {
            var rng = new Random(w);
            for (var i = 0; i < 200_000; i++)
            {
                var chunk = rng.Next(chunks);
                Interlocked.Exchange(ref marked[chunk], 1);
                map.Mark(chunk * 4096L, 1);
            }
        })).ToArray();
        var taker = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested || !map.IsEmpty)
            {
                long cursor = 0;
                while (map.TakeNext(ref cursor, 16, out var first, out var count))
                {
                    for (var c = first; c < first + count; c++)
                    {
                        taken[c] = 1;
                    }
                }
            }
        });
        await Task.WhenAll(writers);
        await stop.CancelAsync();
        await taker;
        Assert.Equal(0, map.DirtyChunks);
        for (var c = 0; c < chunks; c++)
        {
            Assert.True(marked[c] == taken[c], $"chunk {c}: marked {marked[c]}, taken {taken[c]}");
        }
    }
}
