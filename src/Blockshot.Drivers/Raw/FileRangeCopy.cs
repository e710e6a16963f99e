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
            throw new BlockException(Libc.BlockErrorOf(errno),
                $"copy of {length - done} bytes to {targetName} at {targetOffset + done}: {Libc.Describe(errno)}");
        }
    }

    private static async ValueTask CopyBufferedAsync(SafeFileHandle source, long sourceOffset, SafeFileHandle target,
        long targetOffset, long length, string targetName)
    {
        using var buffer = BufferPool.Shared.Rent((int)Math.Min(length, FallbackChunk));
        for (var done = 0L; done < length;)
        {
            var piece = (int)Math.Min(buffer.Length, length - done);
            var memory = buffer.Memory[..piece];
            try
            {
                for (var filled = 0; filled < piece;)
                {
                    var n = await RandomAccess.ReadAsync(source, memory[filled..], sourceOffset + done + filled).ConfigureAwait(false);
                    if (n == 0)
                    {
                        memory.Span[filled..].Clear();
                        break;
                    }
                    filled += n;
                }
                await RandomAccess.WriteAsync(target, memory, targetOffset + done).ConfigureAwait(false);
            }
            catch (IOException e)
            {
                BlockThrow.FromIo(e, $"copy of {piece} bytes to {targetName} at {targetOffset + done}");
            }
            done += piece;
        }
    }
}
