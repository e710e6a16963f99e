namespace Blockshot.Core.Extents;

/// <summary>
/// A set of bytes kept as sorted, disjoint, non-adjacent ranges, with union, subtraction,
/// intersection and complement. Not thread-safe.
/// </summary>
public sealed class RangeSet
{
    private readonly List<ByteRange> _ranges = [];

    /// <summary>Creates an empty set.</summary>
    public RangeSet()
    {
    }

    /// <summary>Creates a set holding the given ranges.</summary>
    public RangeSet(IEnumerable<ByteRange> ranges)
    {
        foreach (var r in ranges)
        {
            Add(r);
        }
    }

    /// <summary>The ranges, sorted and disjoint.</summary>
    public IReadOnlyList<ByteRange> Ranges => _ranges;

    /// <summary>Number of ranges.</summary>
    public int Count => _ranges.Count;

    /// <summary>Total bytes in the set.</summary>
    public long TotalLength
    {
        get
        {
            long total = 0;
            foreach (var r in _ranges)
            {
                total += r.Length;
            }
            return total;
        }
    }

    /// <summary>True when the set holds no bytes.</summary>
    public bool IsEmpty => _ranges.Count == 0;

    /// <summary>Removes everything.</summary>
    public void Clear() => _ranges.Clear();

    /// <summary>Adds a range (union), merging with neighbours it overlaps or touches.</summary>
    public void Add(ByteRange range)
    {
        if (range.IsEmpty)
        {
            return;
        }
        var start = range.Offset;
        var end = range.End;
        var i = FirstEndingAtOrAfter(start);
        var j = i;
        while (j < _ranges.Count && _ranges[j].Offset <= end)
        {
            start = Math.Min(start, _ranges[j].Offset);
            end = Math.Max(end, _ranges[j].End);
            j++;
        }
        _ranges.RemoveRange(i, j - i);
        _ranges.Insert(i, ByteRange.FromBounds(start, end));
    }

    /// <summary>Adds <c>[offset, offset + length)</c>.</summary>
    public void Add(long offset, long length) => Add(new ByteRange(offset, length));

    /// <summary>Adds every range of <paramref name="other"/>.</summary>
    public void UnionWith(RangeSet other)
    {
        foreach (var r in other._ranges)
        {
            Add(r);
        }
    }

    /// <summary>Removes a range (subtraction).</summary>
    public void Remove(ByteRange range)
    {
        if (range.IsEmpty)
        {
            return;
        }
        var i = FirstEndingAfter(range.Offset);
        while (i < _ranges.Count && _ranges[i].Offset < range.End)
        {
            var r = _ranges[i];
            var left = ByteRange.FromBounds(r.Offset, range.Offset);
            var right = ByteRange.FromBounds(range.End, r.End);
            _ranges.RemoveAt(i);
            if (!right.IsEmpty)
            {
                _ranges.Insert(i, right);
            }
            if (!left.IsEmpty)
            {
                _ranges.Insert(i, left);
                i++;
            }
            if (!right.IsEmpty)
            {
                break;
            }
        }
    }

    /// <summary>Removes every range of <paramref name="other"/>.</summary>
    public void ExceptWith(RangeSet other)
    {
        foreach (var r in other._ranges)
        {
            Remove(r);
        }
    }

    /// <summary>Keeps only the bytes also in <paramref name="other"/>.</summary>
    public void IntersectWith(RangeSet other)
    {
        var result = Intersection(this, other);
        _ranges.Clear();
        _ranges.AddRange(result._ranges);
    }

    /// <summary>The bytes in both sets.</summary>
    public static RangeSet Intersection(RangeSet a, RangeSet b)
    {
        var result = new RangeSet();
        int i = 0, j = 0;
        while (i < a._ranges.Count && j < b._ranges.Count)
        {
            var x = a._ranges[i];
            var y = b._ranges[j];
            var both = x.Intersect(y);
            if (!both.IsEmpty)
            {
                result._ranges.Add(both);
            }
            if (x.End <= y.End)
            {
                i++;
            }
            else
            {
                j++;
            }
        }
        return result;
    }

    /// <summary>The parts of <paramref name="range"/> that are in the set.</summary>
    public RangeSet Intersect(ByteRange range)
    {
        var result = new RangeSet();
        for (var i = FirstEndingAfter(range.Offset); i < _ranges.Count && _ranges[i].Offset < range.End; i++)
        {
            var both = _ranges[i].Intersect(range);
            if (!both.IsEmpty)
            {
                result._ranges.Add(both);
            }
        }
        return result;
    }

    /// <summary>The parts of <paramref name="within"/> that are not in the set.</summary>
    public RangeSet Complement(ByteRange within)
    {
        var result = new RangeSet();
        var cursor = within.Offset;
        for (var i = FirstEndingAfter(within.Offset); i < _ranges.Count && _ranges[i].Offset < within.End; i++)
        {
            if (_ranges[i].Offset > cursor)
            {
                result._ranges.Add(ByteRange.FromBounds(cursor, _ranges[i].Offset));
            }
            cursor = Math.Max(cursor, _ranges[i].End);
        }
        if (cursor < within.End)
        {
            result._ranges.Add(ByteRange.FromBounds(cursor, within.End));
        }
        return result;
    }

    /// <summary>True when every byte of <paramref name="range"/> is in the set.</summary>
    public bool Contains(ByteRange range)
    {
        if (range.IsEmpty)
        {
            return true;
        }
        var i = FirstEndingAfter(range.Offset);
        return i < _ranges.Count && _ranges[i].Contains(range);
    }

    /// <summary>True when any byte of <paramref name="range"/> is in the set.</summary>
    public bool Overlaps(ByteRange range)
    {
        var i = FirstEndingAfter(range.Offset);
        return i < _ranges.Count && _ranges[i].Overlaps(range);
    }

    // Index of the first range whose End > offset.
    private int FirstEndingAfter(long offset)
    {
        int lo = 0, hi = _ranges.Count;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_ranges[mid].End > offset)
            {
                hi = mid;
            }
            else
            {
                lo = mid + 1;
            }
        }
        return lo;
    }

    // Index of the first range whose End >= offset (touching ranges merge).
    private int FirstEndingAtOrAfter(long offset)
    {
        int lo = 0, hi = _ranges.Count;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_ranges[mid].End >= offset)
            {
                hi = mid;
            }
            else
            {
                lo = mid + 1;
            }
        }
        return lo;
    }
}
