using Blockshot.Drivers.Raw;

namespace Blockshot.Drivers;

// The inline fast path: buffered reads and writes the page cache can serve at once run on the
// caller's thread with RWF_NOWAIT, and only those that would block go to the thread pool. A cached
// 4 KiB read costs one system call instead of a thread-pool round trip.
public sealed partial class RawFileNode
{
    // Set once the kernel or filesystem refuses RWF_NOWAIT for that direction; then always async.
    private volatile bool _nowaitReadRefused;
    private volatile bool _nowaitWriteRefused;

    /// <summary>
    /// Reads what the page cache holds without blocking. Returns the bytes read (possibly fewer than
    /// asked, possibly none); the caller reads the rest the blocking way.
    /// </summary>
    private unsafe int TryReadNowait(long offset, Span<byte> buffer)
    {
        if (_nowaitReadRefused || buffer.IsEmpty)
        {
            return 0;
        }
        fixed (byte* p = buffer)
        {
            var vector = new Libc.IoVector { Base = p, Length = (nuint)buffer.Length };
            var n = Libc.PReadV2(_handle, &vector, 1, offset, Libc.RwfNowait);
            if (n >= 0)
            {
                return (int)n;
            }
            if (Libc.Errno == Libc.EOPNOTSUPP)
            {
                _nowaitReadRefused = true;
            }
            return 0;
        }
    }

    // Small buffered writes on filesystems that refuse RWF_NOWAIT still go inline: a page-cache write
    // of this size practically never blocks, and a thread-pool round trip costs more than the write.
    private const int InlineWriteLimit = 64 << 10;

    /// <summary>Writes into the page cache without blocking; returns the bytes written (possibly none).</summary>
    private unsafe int TryWriteNowait(long offset, ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return 0;
        }
        if (_nowaitWriteRefused)
        {
            return data.Length <= InlineWriteLimit ? WriteInline(offset, data) : 0;
        }
        fixed (byte* p = data)
        {
            var vector = new Libc.IoVector { Base = p, Length = (nuint)data.Length };
            var n = Libc.PWriteV2(_handle, &vector, 1, offset, Libc.RwfNowait);
            if (n >= 0)
            {
                return (int)n;
            }
            if (Libc.Errno == Libc.EOPNOTSUPP)
            {
                _nowaitWriteRefused = true;
            }
            return 0;
        }
    }

    private unsafe int WriteInline(long offset, ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data)
        {
            var vector = new Libc.IoVector { Base = p, Length = (nuint)data.Length };
            var n = Libc.PWriteV2(_handle, &vector, 1, offset, 0);
            return n < 0 ? 0 : (int)n; // on error the blocking path retries and reports it
        }
    }
}
