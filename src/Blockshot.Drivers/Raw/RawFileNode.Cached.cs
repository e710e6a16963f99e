using Blockshot.Core;
using Blockshot.Drivers.Raw;

namespace Blockshot.Drivers;

// Zero-copy reads: a buffered file's data is its page cache, so a read the cache holds whole can be sent
// to a client from there (sendfile) without a copy through a buffer. Two system calls decide: cachestat
// says whether every page of the range is cached (so sending cannot wait for the disk), and SEEK_HOLE
// whether the range is all data (a range with a hole goes the usual way, which can answer with hole
// chunks).
public sealed partial class RawFileNode
{
    // Set once the kernel lacks cachestat (before Linux 6.5): then never mapped.
    private volatile bool _cacheStatRefused;

    /// <inheritdoc/>
    public override unsafe bool TryMapCachedRead(long offset, int length, out CachedFileRange range)
    {
        range = default;
        // Called directly (not through a slot) it still only answers: a range outside the file is not mapped.
        if (_direct || _cacheStatRefused || length <= 0 || !RequestValidator.InRange(offset, length, Size))
        {
            return false;
        }
        var page = Environment.SystemPageSize;
        var pages = ((offset + length + page - 1) / page) - (offset / page);
        var query = new Libc.CacheStatRange { Offset = (ulong)offset, Length = (ulong)length };
        Libc.CacheStatResult stat;
        if (Libc.CacheStat(Libc.SysCacheStat, _handle, &query, &stat, 0) != 0)
        {
            if (Libc.Errno is Libc.ENOSYS or Libc.EOPNOTSUPP)
            {
                _cacheStatRefused = true;
            }
            return false;
        }
        if ((long)stat.Cached < pages)
        {
            return false;
        }
        var hole = Libc.LSeek(_handle, offset, Libc.SeekHole);
        if (hole < offset + length)
        {
            return false; // a hole in the range, or an error: the usual read handles both
        }
        var added = false;
        _handle.DangerousAddRef(ref added);
        range = new CachedFileRange(_handle, offset, length);
        return true;
    }
}
