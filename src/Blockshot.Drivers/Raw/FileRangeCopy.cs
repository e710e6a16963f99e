using Blockshot.Core;
using Blockshot.Core.Buffers;
using Blockshot.Drivers.Raw;
using Microsoft.Win32.SafeHandles;

namespace Blockshot.Drivers;

/// <summary>
/// Copies a byte range from one file to another inside the kernel: copy_file_range, which shares blocks
/// where the file system can (reflink) and otherwise copies page cache to page cache once, instead of
/// twice through a buffer. Where the kernel will not copy between the two files (different file systems,
/// a file system without support), it copies through a pooled buffer instead. Bytes past the end of the
/// source are written as zeros, as a read would return them.
/// </summary>
public static class FileRangeCopy
{
    private const int FallbackChunk = 1 << 20;

    /// <summary>
    /// Copies <paramref name="length"/> bytes from <paramref name="source"/> at
    /// <paramref name="sourceOffset"/> to <paramref name="target"/> at <paramref name="targetOffset"/>.
    /// Failures are <see cref="BlockException"/>s naming <paramref name="targetName"/>.
    /// </summary>
    public static async ValueTask CopyAsync(SafeFileHandle source, long sourceOffset, SafeFileHandle target,
        long targetOffset, long length, string targetName)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(target);
        var done = 0L;
        while (done < length)
        {
            var n = await SyscallOp.CopyRange(source, sourceOffset + done, target, targetOffset + done, length - done)
                .ConfigureAwait(false);
            if (n > 0)
            {
                done += n;
                continue;
            }
            var errno = (int)-n;
            if (n == 0 || errno is Libc.EXDEV or Libc.EOPNOTSUPP or Libc.ENOSYS or Libc.EINVAL or Libc.EBADF)
            {
                // The source ended (the rest reads as zeros), or the kernel will not copy between these files.
                await CopyBufferedAsync(source, sourceOffset + done, target, targetOffset + done, length - done, targetName)
                    .ConfigureAwait(false);
                return;
            }
            Throw(errno, "copy", targetName, targetOffset + done, length - done);
        }
    }

    private static async ValueTask CopyBufferedAsync(SafeFileHandle source, long sourceOffset, SafeFileHandle target,
        long targetOffset, long length, string targetName)
    {
        using var buffer = BufferPool.Shared.Rent((int)Math.Min(length, FallbackChunk));
        var done = 0L;
        while (done < length)
        {
            var piece = (int)Math.Min(buffer.Length, length - done);
            var memory = buffer.Memory[..piece];
            var filled = 0;
            while (filled < piece)
            {
                var r = await ReadAsync(source, memory[filled..], sourceOffset + done + filled).ConfigureAwait(false);
                if (r < 0)
                {
                    Throw((int)-r, "read of the copy source for", targetName, targetOffset + done, piece);
                }
                if (r == 0)
                {
                    memory.Span[filled..].Clear();
                    break;
                }
                filled += (int)r;
            }
            var w = await WriteAsync(target, memory, targetOffset + done).ConfigureAwait(false);
            if (w < 0)
            {
                Throw((int)-w, "write", targetName, targetOffset + done, piece);
            }
            done += piece;
        }
    }

    private static async ValueTask<long> ReadAsync(SafeFileHandle file, Memory<byte> buffer, long offset)
    {
        using var pin = buffer.Pin();
        return await StartRead(file, pin, buffer.Length, offset).ConfigureAwait(false);
    }

    private static async ValueTask<long> WriteAsync(SafeFileHandle file, ReadOnlyMemory<byte> data, long offset)
    {
        using var pin = data.Pin();
        return await StartWrite(file, pin, data.Length, offset).ConfigureAwait(false);
    }

    private static unsafe ValueTask<long> StartRead(SafeFileHandle file, System.Buffers.MemoryHandle pin, int length, long offset) =>
        SyscallOp.Read(file, pin.Pointer, length, offset);

    private static unsafe ValueTask<long> StartWrite(SafeFileHandle file, System.Buffers.MemoryHandle pin, int length, long offset) =>
        SyscallOp.Write(file, pin.Pointer, length, offset);

    private static void Throw(int errno, string operation, string targetName, long offset, long length)
    {
        var error = errno switch
        {
            Libc.ENOSPC or Libc.EFBIG or Libc.EDQUOT => BlockError.NoSpace,
            _ => BlockError.Io,
        };
        throw new BlockException(error, $"{operation} of {length} bytes at {offset} on {targetName}: {Libc.Describe(errno)}");
    }
}
