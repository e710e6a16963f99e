using System.Buffers;
using Blockshot.Core;
using Blockshot.Qcow2.Format;
using Blockshot.Qcow2.Internal;

namespace Blockshot.Qcow2;

public sealed partial class Qcow2Node
{
    /// <summary>
    /// Writes one whole cluster compressed with the image's compression type. <paramref name="offset"/>
    /// must be cluster aligned and <paramref name="data"/> one cluster long (or reach exactly the end of
    /// the image for its last, partial cluster, which is padded with zeros). Data that does not shrink is
    /// written uncompressed. Compressed pieces are packed at byte granularity, several to a host cluster.
    /// </summary>
    public async ValueTask WriteCompressedAsync(long offset, ReadOnlyMemory<byte> data)
    {
        CheckWritable();
        if (HasDataFile)
        {
            BlockThrow.NotSupported("compressed clusters in an image with an external data file");
        }
        if ((offset & _g.ClusterMask) != 0 || offset < 0 || offset >= Size
            || (data.Length != _g.ClusterSize && offset + data.Length != Size) || data.Length > _g.ClusterSize)
        {
            Qcow2Error.Argument($"compressed writes take one whole cluster at a cluster boundary (offset {offset}, {data.Length} bytes)");
        }
        var cluster = ArrayPool<byte>.Shared.Rent(_g.ClusterSize);
        var compressed = ArrayPool<byte>.Shared.Rent(_g.ClusterSize);
        try
        {
            data.Span.CopyTo(cluster);
            cluster.AsSpan(data.Length, _g.ClusterSize - data.Length).Clear();
            var n = ClusterCompressor.Compress(CompressionType, cluster.AsSpan(0, _g.ClusterSize), compressed.AsSpan(0, _g.ClusterSize));
            if (n < 0)
            {
                await WriteAsync(offset, data, IoFlags.None).ConfigureAwait(false);
                return;
            }
            using (await _ranges.AcquireAsync(offset, _g.ClusterSize).ConfigureAwait(false))
            {
                long host;
                long l2;
                L2Entry old;
                var guestCluster = offset >> _g.ClusterBits;
                var l1Index = _g.L1Index(guestCluster);
                var l2Index = _g.L2Index(guestCluster);
                await _meta.WaitAsync().ConfigureAwait(false);
                try
                {
                    CheckWritable();
                    await MarkDirtyIfLazyAsync().ConfigureAwait(false);
                    l2 = await EnsureL2TableAsync(l1Index).ConfigureAwait(false);
                    var olds = new L2Entry[1];
                    await ReadEntriesAsync(l2, l2Index, 1, olds).ConfigureAwait(false);
                    old = olds[0];
                    host = await _refcounts.AllocateBytesAsync(n).ConfigureAwait(false);
                }
                finally
                {
                    _meta.Release();
                }
                var descriptor = CompressedDescriptor.For(host, n);
                try
                {
                    await _file.WriteAsync(host, compressed.AsMemory(0, n)).ConfigureAwait(false);
                }
                catch
                {
                    await _meta.WaitAsync().ConfigureAwait(false);
                    try
                    {
                        await _refcounts.UpdateAsync(host, n, -1).ConfigureAwait(false);
                    }
                    finally
                    {
                        _meta.Release();
                    }
                    throw;
                }
                await _meta.WaitAsync().ConfigureAwait(false);
                try
                {
                    await WriteEntriesAsync(l2, l2Index, new[] { new L2Entry(descriptor.Encode(_g.ClusterBits)) }).ConfigureAwait(false);
                    if (!_refcounts.Lazy)
                    {
                        await _l2Cache.SetDependencyAsync(_refcountCache).ConfigureAwait(false);
                    }
                    // A torn compressed cluster would fail to decompress: data reaches disk first.
                    _l2Cache.DependsOnFlush = true;
                    if (!EntryIsValid(old, offset))
                    {
                        throw await SignalCorruptionAsync($"invalid L2 entry {old} (L2 offset: 0x{l2:x}, L2 index: 0x{l2Index:x})").ConfigureAwait(false);
                    }
                    await FreeEntryAsync(old).ConfigureAwait(false);
                }
                finally
                {
                    _meta.Release();
                }
                MarkBitmapsDirty(offset, data.Length);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(cluster);
            ArrayPool<byte>.Shared.Return(compressed);
        }
    }
}
