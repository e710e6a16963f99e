using Blockshot.Core.Extents;

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

    /// <summary>Appends runs of changed (1) and unchanged (0) blocks, in bytes, to <paramref name="extents"/>.</summary>
    public void Describe(long offset, long length, int blockShift, byte since, long deviceSize, ExtentList extents)
    {
        var end = Math.Min(offset + length, deviceSize);
        while (offset < end && !extents.IsFull)
        {
            var block = offset >> blockShift;
            var p = block >> ChangeMap.PageShift;
            long next;
            uint flags;
            if (_pages[p] is null)
            {
                next = (p + 1) << (ChangeMap.PageShift + blockShift);
                flags = 0;
            }
            else
            {
                next = (block + 1) << blockShift;
                flags = ChangedSince(block, since) ? 1u : 0u;
            }
            next = Math.Min(next, end);
            extents.Add(next - offset, flags);
            offset = next;
        }
    }
}
