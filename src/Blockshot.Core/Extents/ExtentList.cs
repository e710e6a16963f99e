using System.Diagnostics;

namespace Blockshot.Core.Extents;

/// <summary>
/// A reusable sink for status queries. A producer appends runs that start where the previous one
/// ended, beginning at the query offset; adjacent runs with equal flags merge. Runs are clipped at the
/// query end, and the producer may stop early (the caller asks again from <see cref="End"/>).
/// </summary>
public sealed class ExtentList
{
    private Extent[] _items;
    private int _count;
    private long _limit;
    private int _maxCount;
    private bool _capped;

    /// <summary>Creates a list with room for <paramref name="capacity"/> runs before growing.</summary>
    public ExtentList(int capacity = 64)
    {
        _items = new Extent[Math.Max(capacity, 4)];
        _maxCount = int.MaxValue;
    }

    /// <summary>Where the query started.</summary>
    public long Start { get; private set; }

    /// <summary>Where the next run must start.</summary>
    public long End { get; private set; }

    /// <summary>Where the query ends; runs are clipped here.</summary>
    public long Limit => _limit;

    /// <summary>Number of runs.</summary>
    public int Count => _count;

    /// <summary>
    /// True when the query range is covered, or a run with new flags was refused because the run cap
    /// was reached (runs that extend the last one are still accepted until then).
    /// </summary>
    public bool IsFull => End >= _limit || _capped;

    /// <summary>Bytes still to describe.</summary>
    public long Remaining => _limit - End;

    /// <summary>The runs, in order.</summary>
    public ReadOnlySpan<Extent> Items => _items.AsSpan(0, _count);

    /// <summary>Run <paramref name="index"/>.</summary>
    public Extent this[int index] => _items[index];

    /// <summary>Starts a new query over <c>[offset, offset + length)</c>, keeping at most <paramref name="maxCount"/> runs.</summary>
    public void Reset(long offset, long length, int maxCount = int.MaxValue)
    {
        Debug.Assert(offset >= 0 && length >= 0);
        Start = offset;
        End = offset;
        _limit = offset + length;
        _count = 0;
        _capped = false;
        _maxCount = Math.Max(1, maxCount);
    }

    /// <summary>Appends a run of <paramref name="length"/> bytes at <see cref="End"/>.</summary>
    public void Add(long length, uint flags)
    {
        Debug.Assert(length >= 0);
        if (length <= 0 || End >= _limit)
        {
            return;
        }
        length = Math.Min(length, _limit - End);
        if (_count > 0 && _items[_count - 1].Flags == flags)
        {
            ref var last = ref _items[_count - 1];
            last = last with { Length = last.Length + length };
        }
        else
        {
            if (_count >= _maxCount)
            {
                _capped = true;
                return;
            }
            if (_count == _items.Length)
            {
                Array.Resize(ref _items, _items.Length * 2);
            }
            _items[_count++] = new Extent(End, length, flags);
        }
        End += length;
    }

    /// <summary>Appends a run that covers bytes up to <paramref name="end"/>.</summary>
    public void AddUntil(long end, uint flags) => Add(end - End, flags);
}
