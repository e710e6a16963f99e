namespace Blockshot.Snapshots.Cbw;

/// <summary>
/// A sparse map from chunk index to a 32-bit entry, in pages of 4096 entries allocated on first
/// write, so a snapshot that copied little costs little. Entries are written under the chunk's
/// exclusive range lock and read under at least a shared one; page creation is lock-free.
/// </summary>
internal sealed class ChunkTable
{
    /// <summary>The chunk has no entry: the snapshot reads it from the origin.</summary>
    public const uint None = 0;

    /// <summary>The snapshot's data for the chunk is all zeros (nothing stored).</summary>
    public const uint Zero = 0xFFFF_FFFE;

    /// <summary>A reader discarded the chunk: reads of it fail, and it is never copied again.</summary>
    public const uint Discarded = 0xFFFF_FFFF;

    /// <summary>The largest store slot an entry can name.</summary>
    public const long MaxSlot = 0xFFFF_FFFD - 1;

    private const int PageShift = 12;
    private const int PageSize = 1 << PageShift;

    private readonly uint[]?[] _pages;

    public ChunkTable(long chunkCount)
    {
        ChunkCount = chunkCount;
        _pages = new uint[]?[(chunkCount + PageSize - 1) >> PageShift];
    }

    public long ChunkCount { get; }

    /// <summary>Memory used by allocated pages, in bytes.</summary>
    public long MemoryBytes
    {
        get
        {
            long pages = 0;
            foreach (var p in _pages)
            {
                if (p is not null)
                {
                    pages++;
                }
            }
            return (pages * PageSize * sizeof(uint)) + (_pages.Length * IntPtr.Size);
        }
    }

    public uint this[long chunk]
    {
        get => Volatile.Read(ref _pages[chunk >> PageShift]) is { } page ? Volatile.Read(ref page[chunk & (PageSize - 1)]) : None;
        set
        {
            ref var slot = ref _pages[chunk >> PageShift];
            var page = Volatile.Read(ref slot);
            if (page is null)
            {
                if (value == None)
                {
                    return;
                }
                var fresh = new uint[PageSize];
                page = Interlocked.CompareExchange(ref slot, fresh, null) ?? fresh;
            }
            Volatile.Write(ref page[chunk & (PageSize - 1)], value);
        }
    }

    /// <summary>Encodes a store slot as an entry.</summary>
    public static uint FromSlot(long slot) => (uint)(slot + 1);

    /// <summary>True when the entry names a store slot.</summary>
    public static bool IsSlot(uint entry) => entry != None && entry < Zero;

    /// <summary>The store slot an entry names.</summary>
    public static long ToSlot(uint entry) => entry - 1L;

    /// <summary>Drops every entry.</summary>
    public void Clear() => Array.Clear(_pages);

    /// <summary>Calls <paramref name="visit"/> for every entry that is not <see cref="None"/>.</summary>
    public void ForEach(Action<long, uint> visit)
    {
        for (long p = 0; p < _pages.Length; p++)
        {
            if (Volatile.Read(ref _pages[p]) is not { } page)
            {
                continue;
            }
            for (var i = 0; i < PageSize; i++)
            {
                var entry = Volatile.Read(ref page[i]);
                if (entry != None)
                {
                    visit((p << PageShift) + i, entry);
                }
            }
        }
    }
}
