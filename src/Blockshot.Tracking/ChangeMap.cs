namespace Blockshot.Tracking;

/// <summary>
/// One byte per tracking block: the period in which the block last changed (0 = not since the
/// generation began). Pages of 4096 blocks are allocated on first mark. <see cref="Freeze"/> returns a
/// view of the map as it is now at the cost of copying, later, only the pages that change after it
/// (copy on write), so a frozen view of a quiet device costs almost nothing.
/// </summary>
internal sealed class ChangeMap
{
    public const int PageShift = 12;
    public const int PageSize = 1 << PageShift;

    // _pages[i] is the live page; _epochs[i] the freeze epoch it was last copied in. Both guarded by
    // _sync for writes; _pages is read lock-free (a page reference is swapped atomically).
    private readonly byte[]?[] _pages;
    private readonly int[] _epochs;
    private readonly object _sync = new();
    private int _epoch;

    public ChangeMap(long blockCount)
    {
        BlockCount = blockCount;
        _pages = new byte[]?[(blockCount + PageSize - 1) >> PageShift];
        _epochs = new int[_pages.Length];
    }

    public long BlockCount { get; }

    public int PageCount => _pages.Length;

    /// <summary>The period a block last changed in.</summary>
    public byte this[long block] =>
        Volatile.Read(ref _pages[block >> PageShift]) is { } page ? Volatile.Read(ref page[block & (PageSize - 1)]) : (byte)0;

    /// <summary>
    /// Sets blocks <c>[first, last]</c> to <paramref name="period"/> (never lowering a value). Returns the
    /// pages that changed, as a bit per page in <paramref name="changedPages"/> (the caller persists them).
    /// </summary>
    public bool Mark(long first, long last, byte period, HashSet<long>? changedPages)
    {
        var changed = false;
        lock (_sync)
        {
            for (var block = first; block <= last; block++)
            {
                var p = block >> PageShift;
                var page = _pages[p];
                var i = (int)(block & (PageSize - 1));
                if (page is not null && page[i] >= period)
                {
                    continue;
                }
                page = Writable(p);
                page[i] = period;
                changed = true;
                changedPages?.Add(p);
            }
        }
        return changed;
    }

    /// <summary>True when every block in <c>[first, last]</c> already holds <paramref name="period"/> or more.</summary>
    public bool AllAtLeast(long first, long last, byte period)
    {
        for (var block = first; block <= last; block++)
        {
            if (this[block] < period)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>A read-only view of the map as it is now.</summary>
    public FrozenMap Freeze()
    {
        lock (_sync)
        {
            _epoch++;
            return new FrozenMap([.. _pages], BlockCount);
        }
    }

    /// <summary>A copy of a page's bytes (zeros if never marked), for persisting.</summary>
    public void CopyPage(long page, Span<byte> destination)
    {
        lock (_sync)
        {
            if (_pages[page] is { } p)
            {
                p.CopyTo(destination);
            }
            else
            {
                destination[..PageSize].Clear();
            }
        }
    }

    /// <summary>Replaces a page's content (loading a persisted map).</summary>
    public void LoadPage(long page, ReadOnlySpan<byte> source)
    {
        lock (_sync)
        {
            if (source.IndexOfAnyExcept((byte)0) < 0)
            {
                _pages[page] = null;
                return;
            }
            var p = Writable(page);
            source[..PageSize].CopyTo(p);
        }
    }

    /// <summary>Forgets every mark (a new generation).</summary>
    public void Clear()
    {
        lock (_sync)
        {
            _epoch++;
            Array.Clear(_pages);
        }
    }

    /// <summary>Bytes used by allocated pages.</summary>
    public long MemoryBytes
    {
        get
        {
            long n = 0;
            foreach (var p in _pages)
            {
                if (p is not null)
                {
                    n++;
                }
            }
            return (n * PageSize) + (_pages.Length * (IntPtr.Size + sizeof(int)));
        }
    }

    // Caller holds _sync. Copies a page shared with a frozen view before it is changed.
    private byte[] Writable(long p)
    {
        var page = _pages[p];
        if (page is null)
        {
            page = new byte[PageSize];
        }
        else if (_epochs[p] != _epoch)
        {
            page = (byte[])page.Clone();
        }
        else
        {
            return page;
        }
        _epochs[p] = _epoch;
        Volatile.Write(ref _pages[p], page);
        return page;
    }
}
