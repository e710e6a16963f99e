using Blockshot.Core.Buffers;

namespace Blockshot.Drivers;

/// <summary>How <see cref="RawFileNode.Open"/> opens an image file or a host block device.</summary>
public sealed record RawFileOptions
{
    /// <summary>The defaults: read-write, through the page cache, locked against other writers.</summary>
    public static RawFileOptions Default { get; } = new();

    /// <summary>Open read-only: writes, zeroes, trims and resizes fail with <c>ReadOnly</c>.</summary>
    public bool ReadOnly { get; init; }

    /// <summary>
    /// Bypass the page cache (O_DIRECT). Requests that are not aligned, or whose memory is not, go
    /// through aligned bounce buffers, with read-modify-write for partial blocks.
    /// </summary>
    public bool Direct { get; init; }

    /// <summary>
    /// Buffered writes the file system will not take without waiting (ext4 refuses RWF_NOWAIT) go to the
    /// blocking-I/O threads whatever their size, instead of running inline up to 64 KiB. For files whose
    /// writes mostly land in new page-cache memory (difference storage): a write that waits for that
    /// memory then holds a blocking-I/O thread, never an NBD connection's reader.
    /// </summary>
    public bool OffloadWrites { get; init; }

    /// <summary>
    /// Take the image locks that qemu also takes, so no two writers (ours or qemu's) share an image.
    /// Turning it off is the equivalent of qemu's force-share.
    /// </summary>
    public bool Locking { get; init; } = true;

    /// <summary>Where bounce buffers come from; <see cref="BufferPool.Shared"/> when null.</summary>
    public BufferPool? BufferPool { get; init; }
}
