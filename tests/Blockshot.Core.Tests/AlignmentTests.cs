namespace Blockshot.Core.Tests;

public class AlignmentTests
{
    [Fact]
    public void Every_split_covers_the_request_exactly_with_aligned_body()
    {
        foreach (var alignment in new[] { 1, 512, 4096 })
        {
            for (long offset = 0; offset < 3 * alignment; offset += Math.Max(1, alignment / 7))
            {
                for (long length = 0; length < 4 * alignment; length += Math.Max(1, alignment / 5))
                {
                    var s = AlignedSplit.Of(offset, length, alignment);
                    Assert.Equal(length, s.HeadLength + s.BodyLength + s.TailLength);
                    Assert.True(s.BodyLength % alignment == 0);
                    if (s.BodyLength > 0)
                    {
                        Assert.True(s.BodyOffset % alignment == 0);
                    }
                    Assert.True(s.HeadLength < alignment || (s.BodyLength == 0 && s.TailLength == 0));
                    Assert.True(s.TailLength < alignment);
                    if (s.HeadLength > 0)
                    {
                        Assert.Equal(offset / alignment, (offset + s.HeadLength - 1) / alignment);
                    }
                    if (s.TailLength > 0)
                    {
                        Assert.True(s.TailOffset % alignment == 0);
                    }
                }
            }
        }
    }

    [Fact]
    public void Examples()
    {
        Assert.Equal(new AlignedSplit(100, 3996, 8192, 10), AlignedSplit.Of(100, 3996 + 8192 + 10, 4096));
        Assert.Equal(new AlignedSplit(4096, 0, 4096, 0), AlignedSplit.Of(4096, 4096, 4096));
        Assert.Equal(new AlignedSplit(10, 20, 0, 0), AlignedSplit.Of(10, 20, 4096));
        Assert.Equal(new AlignedSplit(4096, 0, 0, 100), AlignedSplit.Of(4096, 100, 4096));
        Assert.Throws<ArgumentOutOfRangeException>(() => AlignedSplit.Of(0, 1, 3000));
        Assert.Equal(8192, Align.Up(4097, 4096));
        Assert.Equal(4096, Align.Down(8191, 4096));
        Assert.True(Align.IsAligned(65536, 4096));
    }
}
