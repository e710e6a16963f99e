using Blockshot.Core.Extents;

namespace Blockshot.Core;

/// <summary>
/// A node of a block graph: a leaf driver, a filter or a slot. Every request names its offset, so
/// concurrent callers share one node safely; there is no position. Requests reaching a node have been
/// validated at the graph entry (<see cref="Slot"/>): nodes assert, they do not re-check.
/// </summary>
public abstract class BlockNode : IAsyncDisposable
{
    private static readonly byte[] Zeros = GC.AllocateArray<byte>(1 << 20, pinned: true);

    private NodeCapabilities? _capabilities;
    private int _disposed;

    /// <summary>A short word for the node type: <c>raw</c>, <c>memory</c>, <c>qcow2</c>, <c>throttle</c>…</summary>
    public abstract string Kind { get; }

    /// <summary>The size in bytes.</summary>
    public abstract long Size { get; }

    /// <summary>What the node can do, computed once.</summary>
    public virtual NodeCapabilities Capabilities => _capabilities ??= ComputeCapabilities();

    /// <summary>The status contexts this node offers besides allocation.</summary>
    public virtual IReadOnlyList<BlockStatusContext> StatusContexts => [];

    /// <summary>True once <see cref="DisposeAsync"/> has run.</summary>
    protected bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <summary>Computes <see cref="Capabilities"/>; called once.</summary>
    protected abstract NodeCapabilities ComputeCapabilities();

    /// <summary>Reads <paramref name="buffer"/>.Length bytes at <paramref name="offset"/>.</summary>
    public abstract ValueTask ReadAsync(long offset, Memory<byte> buffer);

    /// <summary>Writes <paramref name="data"/> at <paramref name="offset"/>.</summary>
    public virtual ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, IoFlags flags) =>
        ValueTask.FromException(new BlockException(BlockError.ReadOnly, $"{Kind} node is read-only"));

    /// <summary>
    /// Makes <c>[offset, offset + length)</c> read as zeros. With <see cref="IoFlags.MayTrim"/> the range
    /// may be deallocated; with <see cref="IoFlags.FastZero"/> the call fails with
    /// <see cref="BlockError.NotSupported"/> rather than be slow. The default writes zero buffers.
    /// </summary>
    public virtual ValueTask WriteZeroesAsync(long offset, long length, IoFlags flags) =>
        WriteZeroesByWritingAsync(offset, length, flags);

    /// <summary>Hints that <c>[offset, offset + length)</c> is no longer needed; its content becomes unspecified.</summary>
    public virtual ValueTask TrimAsync(long offset, long length, IoFlags flags) => default;

    /// <summary>Makes every completed write durable.</summary>
    public virtual ValueTask FlushAsync() => default;

    /// <summary>Hints that <c>[offset, offset + length)</c> will be read soon.</summary>
    public virtual ValueTask CacheAsync(long offset, long length) => default;

    /// <summary>
    /// Maps a read of <c>[offset, offset + length)</c> to a file range the page cache holds whole, for a
    /// zero-copy send. A node answers true only when its data for the range is exactly those file bytes
    /// and reading them cannot block on the disk; otherwise (the default, and every filter's, since a
    /// filter may change or account for what is read) false, and the caller reads as usual. Must not
    /// block. The caller releases the range once it is sent.
    /// </summary>
    public virtual bool TryMapCachedRead(long offset, int length, out CachedFileRange range)
    {
        range = default;
        return false;
    }

    /// <summary>
    /// Where the node's bytes from <paramref name="offset"/> lie, as they are, in a file: a range of at
    /// most <paramref name="length"/> bytes (it may stop short, at the end of a contiguous run), or an
    /// empty one when the data there is not stored verbatim (a hole, zeros, compressed, in a backing
    /// node, behind a filter, or read with O_DIRECT). The default maps nothing. For whole-image copies
    /// by a tool that owns the node; see <see cref="FileDataRange"/>.
    /// </summary>
    public virtual ValueTask<FileDataRange> MapFileDataAsync(long offset, int length) => default;

    /// <summary>
    /// Writes the bytes of <paramref name="source"/> at <paramref name="offset"/> by a copy inside the
    /// kernel (copy_file_range, falling back to a buffered copy when the two files cannot share one).
    /// False when the node cannot take data that way (the default): nothing was written, and the caller
    /// writes the bytes itself.
    /// </summary>
    public virtual ValueTask<bool> TryWriteFromFileAsync(long offset, FileDataRange source, IoFlags flags) => new(false);

    /// <summary>
    /// Describes the allocation of the range in <paramref name="extents"/> (reset by the caller), with
    /// <see cref="AllocationFlags"/> values. The default reports allocated data.
    /// </summary>
    public virtual ValueTask GetExtentsAsync(long offset, long length, ExtentList extents)
    {
        extents.Add(length, AllocationFlags.Data);
        return default;
    }

    /// <summary>Changes the size; fails with <see cref="BlockError.NotSupported"/> unless the node can.</summary>
    public virtual ValueTask ResizeAsync(long newSize) =>
        ValueTask.FromException(new BlockException(BlockError.NotSupported, $"{Kind} node cannot be resized"));

    /// <summary>Describes the node and what lies beneath it, e.g. <c>throttle → raw(/srv/disk.img)</c>.</summary>
    public virtual string Describe() => Kind;

    /// <summary>Finds a status context by name, or null.</summary>
    public BlockStatusContext? FindStatusContext(string name)
    {
        foreach (var context in StatusContexts)
        {
            if (context.Name == name)
            {
                return context;
            }
        }
        return null;
    }

    /// <summary>Releases the node once; later calls do nothing.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        await DisposeCoreAsync().ConfigureAwait(false);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases what the node holds.</summary>
    protected virtual ValueTask DisposeCoreAsync() => default;

    /// <summary>Emulates write-zeroes by writing zero buffers (refusing <see cref="IoFlags.FastZero"/>).</summary>
    protected async ValueTask WriteZeroesByWritingAsync(long offset, long length, IoFlags flags)
    {
        if ((flags & IoFlags.FastZero) != 0)
        {
            BlockThrow.NotSupported($"fast zeroing on a {Kind} node");
        }
        var step = Math.Min(Zeros.Length, Capabilities.MaxBlockSize);
        var writeFlags = flags & IoFlags.Fua;
        while (length > 0)
        {
            var n = (int)Math.Min(step, length);
            await WriteAsync(offset, Zeros.AsMemory(0, n), writeFlags).ConfigureAwait(false);
            offset += n;
            length -= n;
        }
    }

    /// <summary>A shared read-only buffer of zeros (1 MiB) for emulating zero writes.</summary>
    protected static ReadOnlyMemory<byte> ZeroBuffer => Zeros;
}
