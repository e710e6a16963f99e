using System.Numerics;

namespace Blockshot.Daemon.Mirror;

/// <summary>
/// One bit per chunk of <see cref="Granularity"/> bytes: set when the chunk changed since the copier
/// last took it. There is no lock: every word changes only through interlocked operations, writers
/// only set bits and the one copier only clears bits it has seen set, so a mark racing a take lands
/// either before it (and is taken with it) or after it (and stays set for the next sweep); none is lost.
/// </summary>
internal sealed class DirtyBitmap
{
    private readonly ulong[] _words;
    private readonly int _shift;
    private long _dirtyChunks;

    public DirtyBitmap(long size, int granularity)
    {
        if (granularity < 512 || !BitOperations.IsPow2(granularity))
        {
            throw new ArgumentOutOfRangeException(nameof(granularity), granularity, "granularity must be a power of two of at least 512");
        }
        Size = size;
        Granularity = granularity;
        _shift = BitOperations.Log2((uint)granularity);
        Chunks = (size + granularity - 1) >> _shift;
        _words = new ulong[(Chunks + 63) / 64];
    }

    public long Size { get; }

    public int Granularity { get; }

    public long Chunks { get; }

    public long DirtyChunks => Volatile.Read(ref _dirtyChunks);

    /// <summary>Bytes in dirty chunks (the last chunk counted whole).</summary>
    public long DirtyBytes => Math.Min(DirtyChunks * Granularity, Size);

    public bool IsEmpty => DirtyChunks == 0;

    /// <summary>Marks every chunk <c>[offset, offset + length)</c> touches.</summary>
    public void Mark(long offset, long length)
    {
        if (length <= 0 || offset >= Size)
        {
            return;
        }
        var first = offset >> _shift;
        var last = Math.Min(Chunks - 1, (offset + length - 1) >> _shift);
        while (first <= last)
        {
            var word = (int)(first >> 6);
            var bit = (int)(first & 63);
            var count = (int)Math.Min(64 - bit, last - first + 1);
            var mask = (count == 64 ? ulong.MaxValue : ((1UL << count) - 1)) << bit;
            var before = Interlocked.Or(ref _words[word], mask);
            var added = BitOperations.PopCount(mask & ~before);
            if (added > 0)
            {
                Interlocked.Add(ref _dirtyChunks, added);
            }
            first += count;
        }
    }

    /// <summary>Marks every chunk.</summary>
    public void MarkAll() => Mark(0, Size);

    /// <summary>
    /// Takes (clears and returns) the next run of dirty chunks at or after <paramref name="cursor"/>,
    /// at most <paramref name="maxChunks"/> long and within one 64-chunk word; advances the cursor.
    /// </summary>
    public bool TakeNext(ref long cursor, int maxChunks, out long firstChunk, out int count)
    {
        for (var word = (int)(cursor >> 6); word < _words.Length; word++)
        {
            var value = Volatile.Read(ref _words[word]);
            var startBit = word == (int)(cursor >> 6) ? (int)(cursor & 63) : 0;
            value &= ulong.MaxValue << startBit;
            if (value == 0)
            {
                continue;
            }
            var bit = BitOperations.TrailingZeroCount(value);
            var run = BitOperations.TrailingZeroCount(~(value >> bit));
            run = Math.Min(Math.Min(run, maxChunks), 64 - bit);
            var mask = (run == 64 ? ulong.MaxValue : ((1UL << run) - 1)) << bit;
            var before = Interlocked.And(ref _words[word], ~mask);
            Interlocked.Add(ref _dirtyChunks, -BitOperations.PopCount(before & mask));
            firstChunk = ((long)word << 6) + bit;
            count = run;
            cursor = firstChunk + run;
            return true;
        }
        cursor = Chunks;
        firstChunk = 0;
        count = 0;
        return false;
    }
}
