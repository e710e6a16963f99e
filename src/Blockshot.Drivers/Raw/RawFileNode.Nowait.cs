using Blockshot.Core.Threading;
using Blockshot.Drivers.Raw;

namespace Blockshot.Drivers;

// The inline fast path: buffered reads and writes the page cache can serve at once run on the
// caller's thread with RWF_NOWAIT, and only those that would block go to the blocking-I/O threads. A
// cached 4 KiB read costs one system call instead of a round trip to another thread. A caller on a
// thread of its own (not the thread pool's, nor an NBD connection's reader, which serves many requests
// in turn: a FUSE reader, a command's main thread, a blocking-I/O thread running the next step of a
// request) may block, so its I/O runs inline whatever its size:
// handing it on would only add a wake-up and a second thread's work.
public sealed partial class RawFileNode
{
    // Set once the kernel or filesystem refuses RWF_NOWAIT for that direction; then always async.
    private volatile bool _nowaitReadRefused;
    private volatile bool _nowaitWriteRefused;

    /// <summary>
    /// Reads inline: on a pool thread what the page cache holds without blocking, on a thread of the
    /// caller's own everything (a plain read). Returns the bytes read (possibly fewer than asked, possibly
    /// none); the caller reads the rest on a blocking-I/O thread.
    /// </summary>
    private unsafe int TryReadNowait(long offset, Span<byte> buffer)
    {
        var mayBlock = BlockingPolicy.MayBlockHere;
        if ((_nowaitReadRefused && !mayBlock) || buffer.IsEmpty)
        {
            return 0;
        }
        fixed (byte* p = buffer)
        {
            var vector = new Libc.IoVector { Base = p, Length = (nuint)buffer.Length };
            // On error (even EAGAIN, which a blocking read cannot return) the blocking path retries the
            // rest and reports what fails.
            var n = Libc.PReadV2(_handle, &vector, 1, offset, mayBlock ? 0 : Libc.RwfNowait);
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
    // of this size practically never blocks, and a hand-off to another thread costs more than the write.
    private const int InlineWriteLimit = 64 << 10;

    /// <summary>True once the file system has refused an RWF_NOWAIT write to this file.</summary>
    internal bool RefusesNowaitWrites => _nowaitWriteRefused;

    /// <summary>
    /// Writes inline: on a pool thread into the page cache without blocking (or, where RWF_NOWAIT is
    /// refused, a plain write up to <see cref="InlineWriteLimit"/>, unless the file offloads its writes),
    /// on a thread of the caller's own a plain write of any size. Returns the bytes written (possibly
    /// none); the rest goes to a blocking-I/O thread.
    /// </summary>
    private unsafe int TryWriteNowait(long offset, ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return 0;
        }
        if (BlockingPolicy.MayBlockHere || (_nowaitWriteRefused && data.Length <= InlineWriteLimit && !_offloadWrites))
        {
            return WriteInline(offset, data);
        }
        if (_nowaitWriteRefused)
        {
            return 0;
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
