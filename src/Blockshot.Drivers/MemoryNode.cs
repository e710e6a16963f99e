using Blockshot.Core;
using Blockshot.Core.Extents;

namespace Blockshot.Drivers;

/// <summary>
/// A sparse in-memory device for tests and scratch space. Storage is allocated in 4 KiB pages on
/// first write; pages that are trimmed or zeroed whole are dropped. Pages live in leaves of 4096
/// pages (16 MiB), so extents skip untouched leaves without visiting their pages.
/// </summary>
public sealed class MemoryNode : BlockNode
{
    private const int PageShift = 12;
    private const int PageSize = 1 << PageShift;
    private const int LeafShift = 12;
    private const int LeafPages = 1 << LeafShift;

    // Each leaf is guarded by its own lock for writes, zeroes and trims; reads take no lock (a read
    // racing a write to the same bytes may see either, as on a disk). _leaves is replaced on resize
    // under _resizeLock, with requests drained by the slot above.
    private Leaf?[] _leaves;
    private long _size;
    private readonly object _resizeLock = new();

    /// <summary>Creates a zero-filled device of <paramref name="size"/> bytes.</summary>
    public MemoryNode(long size)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        _size = size;
        _leaves = new Leaf?[LeafCount(size)];
    }

    /// <inheritdoc/>
    public override string Kind => "memory";

    /// <inheritdoc/>
    public override long Size => Volatile.Read(ref _size);

    /// <summary>Bytes of page storage currently allocated.</summary>
    public long AllocatedBytes
    {
        get
        {
            long pages = 0;
            foreach (var leaf in _leaves)
            {
                if (leaf is not null)
                {
                    foreach (var page in leaf.Pages)
                    {
                        if (page is not null)
                        {
                            pages++;
                        }
                    }
                }
            }
            return pages * PageSize;
        }
    }

    /// <inheritdoc/>
    protected override NodeCapabilities ComputeCapabilities() => new(
        NodeFeatures.Write | NodeFeatures.Flush | NodeFeatures.Fua | NodeFeatures.Trim | NodeFeatures.WriteZeroes
        | NodeFeatures.FastZero | NodeFeatures.Extents | NodeFeatures.MultiConn | NodeFeatures.Resize,
        MinBlockSize: 1, PreferredBlockSize: PageSize);

    /// <inheritdoc/>
    public override ValueTask ReadAsync(long offset, Memory<byte> buffer)
    {
        var span = buffer.Span;
        var leaves = _leaves;
        while (!span.IsEmpty)
        {
            var pageIndex = offset >> PageShift;
            var inPage = (int)(offset & (PageSize - 1));
            var n = Math.Min(span.Length, PageSize - inPage);
            var page = leaves[pageIndex >> LeafShift]?.Pages[pageIndex & (LeafPages - 1)];
            if (page is null)
            {
                span[..n].Clear();
            }
            else
            {
                page.AsSpan(inPage, n).CopyTo(span);
            }
            span = span[n..];
            offset += n;
        }
        return default;
    }

    /// <inheritdoc/>
    public override ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, IoFlags flags)
    {
        var span = data.Span;
        while (!span.IsEmpty)
        {
            var pageIndex = offset >> PageShift;
            var inPage = (int)(offset & (PageSize - 1));
            var n = Math.Min(span.Length, PageSize - inPage);
            var leaf = LeafFor(pageIndex);
            lock (leaf)
            {
                ref var page = ref leaf.Pages[pageIndex & (LeafPages - 1)];
                page ??= new byte[PageSize];
                span[..n].CopyTo(page.AsSpan(inPage));
            }
            span = span[n..];
            offset += n;
        }
        return default;
    }

    /// <inheritdoc/>
    public override ValueTask WriteZeroesAsync(long offset, long length, IoFlags flags)
    {
        Zero(offset, length);
        return default;
    }

    /// <inheritdoc/>
    public override ValueTask TrimAsync(long offset, long length, IoFlags flags)
    {
        Zero(offset, length);
        return default;
    }

    /// <inheritdoc/>
    public override ValueTask GetExtentsAsync(long offset, long length, ExtentList extents)
    {
        var leaves = _leaves;
        var end = offset + length;
        var pos = offset;
        while (pos < end && !extents.IsFull)
        {
            var pageIndex = pos >> PageShift;
            var leaf = leaves[pageIndex >> LeafShift];
            long next;
            uint flags;
            if (leaf is null)
            {
                next = ((pageIndex >> LeafShift) + 1) << (LeafShift + PageShift);
                flags = AllocationFlags.HoleZero;
            }
            else
            {
                next = (pageIndex + 1) << PageShift;
                flags = leaf.Pages[pageIndex & (LeafPages - 1)] is null ? AllocationFlags.HoleZero : AllocationFlags.Data;
            }
            next = Math.Min(next, end);
            extents.Add(next - pos, flags);
            pos = next;
        }
        return default;
    }

    /// <inheritdoc/>
    public override ValueTask ResizeAsync(long newSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(newSize);
        lock (_resizeLock)
        {
            var old = Size;
            if (newSize < old)
            {
                Zero(newSize, old - newSize);
            }
            var leaves = _leaves;
            Array.Resize(ref leaves, LeafCount(newSize));
            _leaves = leaves;
            Volatile.Write(ref _size, newSize);
        }
        return default;
    }

    private void Zero(long offset, long length)
    {
        var end = offset + length;
        while (offset < end)
        {
            var pageIndex = offset >> PageShift;
            var inPage = (int)(offset & (PageSize - 1));
            var n = (int)Math.Min(end - offset, PageSize - inPage);
            var leaf = _leaves[pageIndex >> LeafShift];
            if (leaf is not null)
            {
                lock (leaf)
                {
                    ref var page = ref leaf.Pages[pageIndex & (LeafPages - 1)];
                    if (n == PageSize)
                    {
                        page = null;
                    }
                    else
                    {
                        page?.AsSpan(inPage, n).Clear();
                    }
                }
            }
            offset += n;
        }
    }

    private Leaf LeafFor(long pageIndex)
    {
        ref var slot = ref _leaves[pageIndex >> LeafShift];
        var leaf = Volatile.Read(ref slot);
        if (leaf is null)
        {
            var fresh = new Leaf();
            leaf = Interlocked.CompareExchange(ref slot, fresh, null) ?? fresh;
        }
        return leaf;
    }

    private static int LeafCount(long size) => (int)((size + ((long)PageSize << LeafShift) - 1) >> (PageShift + LeafShift));

    private sealed class Leaf
    {
        public byte[]?[] Pages { get; } = new byte[]?[LeafPages];
    }
}
