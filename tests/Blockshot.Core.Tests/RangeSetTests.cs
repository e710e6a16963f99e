using Blockshot.Core.Extents;

namespace Blockshot.Core.Tests;

public class RangeSetTests
{
    private const int Universe = 256;

    [Fact]
    public void Random_union_subtract_intersect_match_a_bitmap_model()
    {
        var rng = new Random(42);
        for (var round = 0; round < 300; round++)
        {
            var a = new RangeSet();
            var b = new RangeSet();
            var modelA = new bool[Universe];
            var modelB = new bool[Universe];
            for (var i = 0; i < 12; i++)
            {
                Mutate(rng, a, modelA);
                Mutate(rng, b, modelB);
                AssertMatches(modelA, a);
            }
            var both = RangeSet.Intersection(a, b);
            AssertMatches(modelA.Zip(modelB, (x, y) => x && y).ToArray(), both);

            var union = new RangeSet(a.Ranges);
            union.UnionWith(b);
            AssertMatches(modelA.Zip(modelB, (x, y) => x || y).ToArray(), union);

            var diff = new RangeSet(a.Ranges);
            diff.ExceptWith(b);
            AssertMatches(modelA.Zip(modelB, (x, y) => x && !y).ToArray(), diff);

            var window = new ByteRange(rng.Next(0, 100), rng.Next(0, 150));
            var complement = a.Complement(window);
            AssertMatches(Enumerable.Range(0, Universe).Select(i => i >= window.Offset && i < window.End && !modelA[i]).ToArray(), complement);
            var inside = a.Intersect(window);
            AssertMatches(Enumerable.Range(0, Universe).Select(i => i >= window.Offset && i < window.End && modelA[i]).ToArray(), inside);

            Assert.Equal(Enumerable.Range((int)window.Offset, (int)window.Length).All(i => modelA[i]), a.Contains(window));
            Assert.Equal(Enumerable.Range((int)window.Offset, (int)window.Length).Any(i => modelA[i]), a.Overlaps(window));
        }
    }

    [Fact]
    public void Touching_ranges_merge_into_one()
    {
        var set = new RangeSet();
        set.Add(0, 10);
        set.Add(10, 10);
        set.Add(30, 5);
        set.Add(20, 10);
        Assert.Single(set.Ranges);
        Assert.Equal(new ByteRange(0, 35), set.Ranges[0]);
    }

    [Fact]
    public void Removing_the_middle_splits_a_range()
    {
        var set = new RangeSet();
        set.Add(0, 100);
        set.Remove(new ByteRange(40, 20));
        Assert.Equal([new ByteRange(0, 40), new ByteRange(60, 40)], set.Ranges);
        Assert.Equal(80, set.TotalLength);
    }

    [Fact]
    public void Byte_range_alignment_and_intersection()
    {
        var r = new ByteRange(5000, 10000);
        Assert.Equal(ByteRange.FromBounds(4096, 16384), r.AlignOutward(4096));
        Assert.Equal(ByteRange.FromBounds(8192, 12288), r.AlignInward(4096));
        Assert.True(new ByteRange(4100, 10).AlignInward(4096).IsEmpty);
        Assert.Equal(new ByteRange(6000, 9000), r.Intersect(new ByteRange(6000, 100000)));
        Assert.False(new ByteRange(0, 10).Overlaps(new ByteRange(10, 10)));
        Assert.False(new ByteRange(5, 0).Overlaps(new ByteRange(0, 10)));
    }

    private static void Mutate(Random rng, RangeSet set, bool[] model)
    {
        var start = rng.Next(0, Universe);
        var length = rng.Next(0, Math.Min(40, Universe - start + 1));
        var add = rng.Next(3) != 0;
        if (add)
        {
            set.Add(start, length);
        }
        else
        {
            set.Remove(new ByteRange(start, length));
        }
        for (var i = start; i < start + length; i++)
        {
            model[i] = add;
        }
    }

    private static void AssertMatches(bool[] model, RangeSet set)
    {
        var actual = new bool[Universe];
        ByteRange? previous = null;
        foreach (var r in set.Ranges)
        {
            Assert.True(r.Length > 0, "empty range kept");
            if (previous is { } p)
            {
                Assert.True(r.Offset > p.End, $"ranges {p} and {r} overlap or touch");
            }
            for (var i = r.Offset; i < r.End; i++)
            {
                actual[i] = true;
            }
            previous = r;
        }
        Assert.Equal(model, actual);
        Assert.Equal(model.Count(x => x), set.TotalLength);
    }
}
