namespace Blockshot.Tracking;

/// <summary>The change map as it was at one instant (a snapshot take). Read-only and cheap to keep.</summary>
public sealed class FrozenMap
{
    private readonly byte[]?[] _pages;

    internal FrozenMap(byte[]?[] pages, long blockCount)
    {
        _pages = pages;
        BlockCount = blockCount;
    }

    /// <summary>Blocks covered.</summary>
    public long BlockCount { get; }

    /// <summary>The period a block last changed in, as of the freeze.</summary>
    public byte this[long block] => _pages[block >> ChangeMap.PageShift] is { } page ? page[block & (ChangeMap.PageSize - 1)] : (byte)0;

    /// <summary>A map in which every block changed in the last possible period (one shared page: no memory per block).</summary>
    internal static FrozenMap Everything(long blockCount)
    {
        var full = new byte[ChangeMap.PageSize];
        full.AsSpan().Fill(byte.MaxValue);
        var pages = new byte[]?[(blockCount + ChangeMap.PageSize - 1) >> ChangeMap.PageShift];
        pages.AsSpan().Fill(full);
        return new FrozenMap(pages, blockCount);
    }

    /// <summary>True when no block of page <paramref name="page"/> ever changed.</summary>
    internal bool PageEmpty(long page) => _pages[page] is null;

    /// <summary>True when the block changed in a period after <paramref name="since"/>.</summary>
    public bool ChangedSince(long block, byte since) => this[block] > since;

    /// <summary>Blocks that changed after period <paramref name="since"/>.</summary>
    public long CountChangedSince(byte since)
    {
        long n = 0;
        for (long p = 0; p < _pages.Length; p++)
        {
            if (_pages[p] is not { } page)
            {
                continue;
            }
            var blocks = (int)Math.Min(ChangeMap.PageSize, BlockCount - (p << ChangeMap.PageShift));
            foreach (var b in page.AsSpan(0, blocks))
            {
                if (b > since)
                {
                    n++;
                }
            }
        }
        return n;
    }
}
