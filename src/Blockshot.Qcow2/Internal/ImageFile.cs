using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Blockshot.Core;
using Blockshot.Drivers;
using Microsoft.Win32.SafeHandles;

namespace Blockshot.Qcow2.Internal;

/// <summary>
/// Positional access to the file under an image: reads past the end return zeros, writes extend the
/// file, <see cref="Sync"/> is fdatasync, and holes are punched with fallocate. Safe for concurrent
/// callers (no shared position).
/// </summary>
internal sealed partial class ImageFile : IDisposable
{
    private readonly SafeFileHandle _handle;
    private int _disposed;

    private ImageFile(SafeFileHandle handle, string path, bool writable)
    {
        _handle = handle;
        Path = path;
        Writable = writable;
    }

    /// <summary>The file's path.</summary>
    public string Path { get; }

    /// <summary>True when opened for writing.</summary>
    public bool Writable { get; }

    /// <summary>Current length of the file.</summary>
    public long Length => RandomAccess.GetLength(_handle);

    /// <summary>
    /// Opens an existing file (a regular file or a block device), taking the qemu-compatible image locks
    /// when <paramref name="locking"/> is set. Open failures are <see cref="ImageOpenException"/>s.
    /// </summary>
    public static ImageFile Open(string path, bool writable, bool locking = true)
    {
        var handle = ImageFileHandle.Open(path, readOnly: !writable, locking);
        return new ImageFile(handle, path, writable);
    }

    /// <summary>
    /// Creates (or empties) a file for writing. The image locks are taken before anything is truncated,
    /// so a file another process is using is refused and left intact.
    /// </summary>
    public static ImageFile Create(string path, bool overwrite, bool locking = true)
    {
        var handle = ImageFileHandle.CreateOrTruncate(path, locking, overwrite);
        return new ImageFile(handle, path, true);
    }

    /// <summary>Fills <paramref name="buffer"/> from <paramref name="offset"/>; bytes past the end read as zeros.</summary>
    public ValueTask ReadAsync(long offset, Memory<byte> buffer)
    {
        CheckRange(offset, buffer.Length);
        var n = TryReadNowait(offset, buffer.Span);
        return n == buffer.Length ? default : ReadSlowAsync(offset + n, buffer[n..]);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReadSlowAsync(long offset, Memory<byte> buffer)
    {
        try
        {
            while (!buffer.IsEmpty)
            {
                var n = await RandomAccess.ReadAsync(_handle, buffer, offset).ConfigureAwait(false);
                if (n == 0)
                {
                    buffer.Span.Clear();
                    return;
                }
                buffer = buffer[n..];
                offset += n;
            }
        }
        catch (IOException e)
        {
            BlockThrow.FromIo(e, $"read of {Path} at {offset}");
        }
    }

    /// <summary>Writes <paramref name="data"/> at <paramref name="offset"/>.</summary>
    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data)
    {
        CheckWritable();
        CheckRange(offset, data.Length);
        var n = TryWriteNowait(offset, data.Span);
        return n == data.Length ? default : WriteSlowAsync(offset + n, data[n..]);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteSlowAsync(long offset, ReadOnlyMemory<byte> data)
    {
        try
        {
            await RandomAccess.WriteAsync(_handle, data, offset).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            BlockThrow.FromIo(e, $"write of {Path} at {offset}");
        }
        catch (ArgumentException e)
        {
            throw new BlockException(BlockError.NoSpace, $"write of {Path} at {offset}: {e.Message}", e);
        }
    }

    /// <summary>Writes the parts back to back from <paramref name="offset"/> in one gathered write.</summary>
    public async ValueTask WriteAsync(long offset, IReadOnlyList<ReadOnlyMemory<byte>> parts)
    {
        CheckWritable();
        long total = 0;
        foreach (var p in parts)
        {
            total += p.Length;
        }
        CheckRange(offset, total);
        if (TryWriteNowait(offset, parts, total))
        {
            return;
        }
        try
        {
            await RandomAccess.WriteAsync(_handle, parts, offset).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            BlockThrow.FromIo(e, $"write of {Path} at {offset}");
        }
        catch (ArgumentException e)
        {
            throw new BlockException(BlockError.NoSpace, $"write of {Path} at {offset}: {e.Message}", e);
        }
    }

    /// <summary>Copies the bytes of <paramref name="source"/> to <paramref name="offset"/> inside the kernel (<see cref="FileRangeCopy"/>).</summary>
    public ValueTask CopyFromAsync(long offset, FileDataRange source)
    {
        CheckWritable();
        CheckRange(offset, source.Length);
        return FileRangeCopy.CopyAsync(source.File!, source.FileOffset, _handle, offset, source.Length, Path);
    }

    /// <summary>The open file, for mapping guest data to it (<see cref="Qcow2Node.MapFileDataAsync"/>).</summary>
    public SafeFileHandle Handle => _handle;

    /// <summary>Offsets past 2^62 only come from corrupt metadata; refuse them before the OS does.</summary>
    private void CheckRange(long offset, long length)
    {
        if (offset < 0 || offset > MaxOffset || length > MaxOffset - offset)
        {
            throw new BlockException(BlockError.Io, $"access to {Path} at offset 0x{offset:x} is out of range (corrupt metadata?)");
        }
    }

    /// <summary>The largest offset any file access may reach.</summary>
    public const long MaxOffset = 1L << 62;

    /// <summary>When false, <see cref="Sync"/> does nothing (the open option <c>NoFlush</c>).</summary>
    public bool SyncEnabled { get; set; } = true;

    /// <summary>Makes written data durable (fdatasync).</summary>
    public void Sync()
    {
        if (!Writable || !SyncEnabled)
        {
            return;
        }
        var fd = (int)_handle.DangerousGetHandle();
        if (Native.fdatasync(fd) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new BlockException(errno == 28 ? BlockError.NoSpace : BlockError.Io, $"fdatasync of {Path} failed (errno {errno})");
        }
    }

    /// <summary>Changes the file length.</summary>
    public void SetLength(long length)
    {
        CheckWritable();
        CheckRange(length, 0);
        try
        {
            RandomAccess.SetLength(_handle, length);
        }
        catch (IOException e)
        {
            BlockThrow.FromIo(e, $"resize of {Path}");
        }
        catch (ArgumentException e)
        {
            throw new BlockException(BlockError.NoSpace, $"resize of {Path}: {e.Message}", e);
        }
    }

    /// <summary>Deallocates a range (it then reads as zeros); returns false when the file system cannot.</summary>
    public bool PunchHole(long offset, long length) =>
        Fallocate(Native.FallocPunchHole | Native.FallocKeepSize, offset, length);

    /// <summary>Makes a range read as zeros without writing them; returns false when unsupported.</summary>
    public bool ZeroRange(long offset, long length) => Fallocate(Native.FallocZeroRange, offset, length);

    /// <summary>Reserves space for a range (extending the file); returns false when unsupported.</summary>
    public bool Allocate(long offset, long length) => Fallocate(0, offset, length);

    private bool Fallocate(int mode, long offset, long length)
    {
        CheckWritable();
        if (length <= 0)
        {
            return true;
        }
        var fd = (int)_handle.DangerousGetHandle();
        if (Native.fallocate(fd, mode, offset, length) == 0)
        {
            return true;
        }
        var errno = Marshal.GetLastPInvokeError();
        if (errno is 95 or 38 or 22)
        {
            return false;
        }
        throw new BlockException(errno == 28 ? BlockError.NoSpace : BlockError.Io, $"fallocate of {Path} failed (errno {errno})");
    }

    private void CheckWritable()
    {
        if (!Writable)
        {
            BlockThrow.ReadOnly(Path);
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _handle.Dispose();
        }
    }
}
