using System.Buffers;
using System.Runtime.InteropServices;

namespace Blockshot.Qcow2.Internal;

// The inline fast path, as in the raw driver: reads and writes the page cache can serve at once run on
// the caller's thread with RWF_NOWAIT; only those that would block go to the thread pool.
internal sealed partial class ImageFile
{
    // Set once the kernel or filesystem refuses RWF_NOWAIT for that direction; then always async.
    private volatile bool _nowaitReadRefused;
    private volatile bool _nowaitWriteRefused;

    /// <summary>Reads what the page cache holds without blocking; returns the bytes read (possibly none).</summary>
    private unsafe int TryReadNowait(long offset, Span<byte> buffer)
    {
        if (_nowaitReadRefused || buffer.IsEmpty)
        {
            return 0;
        }
        fixed (byte* p = buffer)
        {
            var vector = new Native.IoVector { Base = p, Length = (nuint)buffer.Length };
            var n = Native.preadv2(_handle, &vector, 1, offset, Native.RwfNowait);
            if (n >= 0)
            {
                // A short read is the end of the file or an uncached page; the slow path sorts it out.
                return n == 0 ? 0 : (int)n;
            }
            if (Marshal.GetLastPInvokeError() == Native.EOPNOTSUPP)
            {
                _nowaitReadRefused = true;
            }
            return 0;
        }
    }

    /// <summary>Writes into the page cache without blocking; returns the bytes written (possibly none).</summary>
    private unsafe int TryWriteNowait(long offset, ReadOnlySpan<byte> data)
    {
        if (_nowaitWriteRefused || data.IsEmpty)
        {
            return 0;
        }
        fixed (byte* p = data)
        {
            var vector = new Native.IoVector { Base = p, Length = (nuint)data.Length };
            var n = Native.pwritev2(_handle, &vector, 1, offset, Native.RwfNowait);
            if (n >= 0)
            {
                return (int)n;
            }
            if (Marshal.GetLastPInvokeError() == Native.EOPNOTSUPP)
            {
                _nowaitWriteRefused = true;
            }
            return 0;
        }
    }

    /// <summary>
    /// Writes the parts back to back without blocking, all or nothing as far as the caller is concerned:
    /// returns true when every byte went in, false when the caller must write them the blocking way
    /// (rewriting a prefix that did go in is harmless).
    /// </summary>
    private unsafe bool TryWriteNowait(long offset, IReadOnlyList<ReadOnlyMemory<byte>> parts, long total)
    {
        const int MaxVectors = 8;
        if (_nowaitWriteRefused || parts.Count == 0 || parts.Count > MaxVectors)
        {
            return false;
        }
        var vectors = stackalloc Native.IoVector[MaxVectors];
        var pins = new MemoryHandle[parts.Count];
        try
        {
            for (var i = 0; i < parts.Count; i++)
            {
                pins[i] = parts[i].Pin();
                vectors[i] = new Native.IoVector { Base = pins[i].Pointer, Length = (nuint)parts[i].Length };
            }
            var n = Native.pwritev2(_handle, vectors, parts.Count, offset, Native.RwfNowait);
            if (n < 0 && Marshal.GetLastPInvokeError() == Native.EOPNOTSUPP)
            {
                _nowaitWriteRefused = true;
            }
            return n == total;
        }
        finally
        {
            foreach (var pin in pins)
            {
                pin.Dispose();
            }
        }
    }
}
