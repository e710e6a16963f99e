namespace Blockshot.Snapshots.Cbw;

/// <summary>
/// How many snapshot entries name each store slot: a dense array of 4-byte counts indexed by slot,
/// grown in pages of 16 Ki counts (64 KiB) as higher slots come into use. Counts change with atomic
/// operations and allocate nothing once a slot's page exists; only a page's first use takes the lock,
/// which also guards growing the page directory (so a page is never published into a directory
/// that a concurrent growth is about to replace).
/// </summary>
internal sealed class SlotRefCounts
{
    private const int PageShift = 14;
    private const int PageSize = 1 << PageShift;

    private readonly object _grow = new();
    private volatile int[]?[] _pages = [];
    private long _pageCount;

    /// <summary>The reference count of <paramref name="slot"/> (0 when none).</summary>
    public int this[long slot]
    {
        get
        {
            var pages = _pages;
            var p = slot >> PageShift;
            return p < pages.Length && pages[p] is { } page ? Volatile.Read(ref page[slot & (PageSize - 1)]) : 0;
        }
    }

    /// <summary>Memory held: the pages in use and the directory of page pointers, in bytes.</summary>
    public long MemoryBytes => (Interlocked.Read(ref _pageCount) * PageSize * sizeof(int)) + (_pages.Length * (long)IntPtr.Size);

    /// <summary>Adds <paramref name="count"/> references to <paramref name="slot"/>; returns the new count.</summary>
    public int Add(long slot, int count) => Interlocked.Add(ref Cell(slot), count);

    /// <summary>
    /// Drops one reference; true when none is left (the caller then frees the slot). A count never
    /// goes below zero.
    /// </summary>
    public bool Release(long slot)
    {
        ref var cell = ref Cell(slot);
        while (true)
        {
            var current = Volatile.Read(ref cell);
            var next = current <= 1 ? 0 : current - 1;
            if (Interlocked.CompareExchange(ref cell, next, current) == current)
            {
                return next == 0;
            }
        }
    }

    private ref int Cell(long slot)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(slot);
        var pages = _pages;
        var p = slot >> PageShift;
        var page = p < pages.Length ? pages[p] : null;
        return ref (page ?? PageFor(p))[slot & (PageSize - 1)];
    }

    // The first use of a page: grow the directory if needed and create the page, both under the lock.
    private int[] PageFor(long p)
    {
        lock (_grow)
        {
            var pages = _pages;
            if (p >= pages.Length)
            {
                var grown = new int[]?[Math.Max(p + 1, pages.Length * 2L)];
                Array.Copy(pages, grown, pages.Length);
                _pages = pages = grown;
            }
            if (pages[p] is not { } page)
            {
                page = new int[PageSize];
                Volatile.Write(ref pages[p], page);
                Interlocked.Increment(ref _pageCount);
            }
            return page;
        }
    }
}
