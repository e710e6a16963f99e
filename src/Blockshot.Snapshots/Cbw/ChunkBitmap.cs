namespace Blockshot.Snapshots.Cbw;

/// <summary>One bit per chunk, read lock-free and set with atomic OR. 2 MiB covers 1 TiB at 64 KiB chunks.</summary>
internal sealed class ChunkBitmap(long chunkCount)
{
    private readonly long[] _words = new long[(chunkCount + 63) >> 6];

    public bool Get(long chunk) => (Volatile.Read(ref _words[chunk >> 6]) & (1L << (int)(chunk & 63))) != 0;

    public void Set(long chunk) => Interlocked.Or(ref _words[chunk >> 6], 1L << (int)(chunk & 63));

    /// <summary>True when every chunk in <c>[first, last]</c> is set.</summary>
    public bool AllSet(long first, long last)
    {
        for (var c = first; c <= last; c++)
        {
            if (!Get(c))
            {
                return false;
            }
        }
        return true;
    }

    public void ClearAll() => Array.Clear(_words);

    public long MemoryBytes => _words.Length * sizeof(long);
}
