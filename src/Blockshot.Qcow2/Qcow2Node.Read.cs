using System.Buffers;
using System.Runtime.CompilerServices;
using Blockshot.Core;
using Blockshot.Qcow2.Format;
using Blockshot.Qcow2.Internal;

namespace Blockshot.Qcow2;

public sealed partial class Qcow2Node
{
    /// <inheritdoc/>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public override async ValueTask ReadAsync(long offset, Memory<byte> buffer)
    {
        if (buffer.IsEmpty)
        {
            return;
        }
        if (_closed)
        {
            BlockThrow.Error(BlockError.Shutdown, $"qcow2: {Path} is closed");
        }
        var end = offset + buffer.Length;
        var lockStart = _g.ClusterStart(offset);
        using var range = await _ranges.AcquireAsync(lockStart, Align.Up(end, _g.ClusterSize) - lockStart, shared: true).ConfigureAwait(false);
        var pos = offset;
        while (pos < end)
        {
            MappedRun run;
            await _meta.WaitAsync().ConfigureAwait(false);
            try
            {
                run = await LookupAsync(pos, end).ConfigureAwait(false);
            }
            finally
            {
                _meta.Release();
            }
            await ReadRunAsync(run, pos, buffer.Slice((int)(pos - offset), (int)run.Length)).ConfigureAwait(false);
            pos += run.Length;
        }
    }

    /// <summary>Reads the bytes of a mapped run (outside the metadata lock).</summary>
    private ValueTask ReadRunAsync(MappedRun run, long pos, Memory<byte> dest)
    {
        switch (run.Kind)
        {
            case RunKind.Data:
                return DataTarget.ReadAsync(run.Host, dest);
            case RunKind.Zero:
                dest.Span.Clear();
                return default;
            case RunKind.Unallocated:
                return ReadBackingAsync(pos, dest);
            default:
                return ReadCompressedAsync(run.Entry, pos, dest);
        }
    }

    /// <summary>Reads from the backing node, with zeros past its end or without one.</summary>
    private async ValueTask ReadBackingAsync(long pos, Memory<byte> dest)
    {
        var backing = _backing;
        if (backing is null)
        {
            dest.Span.Clear();
            return;
        }
        var backingSize = backing.Size;
        var n = (int)Math.Clamp(backingSize - pos, 0, dest.Length);
        if (n > 0)
        {
            await backing.ReadAsync(pos, dest[..n]).ConfigureAwait(false);
        }
        dest.Span[n..].Clear();
    }

    private async ValueTask ReadCompressedAsync(L2Entry entry, long pos, Memory<byte> dest)
    {
        var cluster = ArrayPool<byte>.Shared.Rent(_g.ClusterSize);
        try
        {
            await DecompressClusterAsync(entry, _g.ClusterStart(pos), cluster.AsMemory(0, _g.ClusterSize)).ConfigureAwait(false);
            cluster.AsSpan(_g.InCluster(pos), dest.Length).CopyTo(dest.Span);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(cluster);
        }
    }

    /// <summary>Reads and decompresses a whole compressed cluster.</summary>
    private async ValueTask DecompressClusterAsync(L2Entry entry, long guestClusterStart, Memory<byte> cluster)
    {
        var descriptor = CompressedDescriptor.Decode(entry.Word, _g.ClusterBits);
        var length = descriptor.ByteLength;
        var compressed = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            await _file.ReadAsync(descriptor.HostOffset, compressed.AsMemory(0, length)).ConfigureAwait(false);
            if (!ClusterCompressor.Decompress(CompressionType, compressed, length, cluster.Span))
            {
                throw new BlockException(BlockError.Io,
                    $"qcow2: could not decompress the cluster at guest offset 0x{guestClusterStart:x} (host 0x{descriptor.HostOffset:x})");
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(compressed);
        }
    }
}
