namespace Blockshot.Tracking;

/// <summary>
/// A set of blocks, one bit each, in pages of 4096 blocks (aligned with the change map's pages)
/// allocated on first use. Adds are lock-free; readers see each bit once its add has returned.
/// </summary>
internal sealed class BlockSet(long blockCount)
{
    private const int WordsPerPage = ChangeMap.PageSize / 64;
    private readonly long[]?[] _pages = new long[]?[(blockCount + ChangeMap.PageSize - 1) >> ChangeMap.PageShift];

    public long BlockCount { get; } = blockCount;

    /// <summary>Adds blocks <c>[first, last]</c>.</summary>
    public void Add(long first, long last)
    {
        for (var block = first; block <= last; block++)
        {
            var p = block >> ChangeMap.PageShift;
            var page = Volatile.Read(ref _pages[p]);
            if (page is null)
            {
                Interlocked.CompareExchange(ref _pages[p], new long[WordsPerPage], null);
                page = Volatile.Read(ref _pages[p])!;
            }
            var i = (int)(block & (ChangeMap.PageSize - 1));
            var bit = 1L << (i & 63);
            if ((Volatile.Read(ref page[i >> 6]) & bit) == 0)
            {
                Interlocked.Or(ref page[i >> 6], bit);
            }
        }
    }

    public bool Contains(long block)
    {
        var page = Volatile.Read(ref _pages[block >> ChangeMap.PageShift]);
        var i = (int)(block & (ChangeMap.PageSize - 1));
        return page is not null && (Volatile.Read(ref page[i >> 6]) & (1L << (i & 63))) != 0;
    }

    /// <summary>True when no block of map page <paramref name="page"/> is in the set.</summary>
    public bool PageEmpty(long page) => Volatile.Read(ref _pages[page]) is null;
}
