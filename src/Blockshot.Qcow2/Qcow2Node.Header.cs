using System.Buffers.Binary;
using Blockshot.Qcow2.Format;

namespace Blockshot.Qcow2;

public sealed partial class Qcow2Node
{
    /// <summary>Rewrites the whole first cluster (header, extensions, backing name) and syncs. Under <see cref="_meta"/>.</summary>
    private async ValueTask RewriteHeaderAsync()
    {
        var cluster = new byte[_g.ClusterSize];
        _hc.FeatureNames = Qcow2HeaderCluster.StandardFeatureNames(_hc.Header.Version, _hc.Header.ClusterBits);
        _hc.WriteTo(cluster);
        await _file.WriteAsync(0, cluster).ConfigureAwait(false);
        _file.Sync();
    }

    /// <summary>Writes a few header bytes in place and syncs (small enough to land atomically).</summary>
    private async ValueTask WriteHeaderBytesAsync(int offset, byte[] bytes)
    {
        await _file.WriteAsync(offset, bytes).ConfigureAwait(false);
        _file.Sync();
    }

    private ValueTask WriteIncompatibleAsync()
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, (ulong)_hc.Header.Incompatible);
        return WriteHeaderBytesAsync(72, bytes);
    }

    private async ValueTask SwitchRefcountTableAsync(long offset, int clusters)
    {
        var bytes = new byte[12];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, (ulong)offset);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(8), (uint)clusters);
        await WriteHeaderBytesAsync(48, bytes).ConfigureAwait(false);
        _hc.Header.RefcountTableOffset = (ulong)offset;
        _hc.Header.RefcountTableClusters = (uint)clusters;
    }

    private async ValueTask SwitchL1TableAsync(long offset, int entries)
    {
        var bytes = new byte[12];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, (uint)entries);
        BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(4), (ulong)offset);
        await WriteHeaderBytesAsync(36, bytes).ConfigureAwait(false);
        _hc.Header.L1Size = (uint)entries;
        _hc.Header.L1TableOffset = (ulong)offset;
    }

    /// <summary>
    /// Records a metadata inconsistency found during I/O: a writable version 3 image gets the corrupt bit
    /// (no further writes), then the request fails. Under <see cref="_meta"/>.
    /// </summary>
    private async ValueTask<Exception> SignalCorruptionAsync(string message)
    {
        if (!_readOnly && !_corrupt)
        {
            _corrupt = true;
            if (IsV3)
            {
                try
                {
                    _hc.Header.Incompatible |= IncompatibleFeatures.Corrupt;
                    await WriteIncompatibleAsync().ConfigureAwait(false);
                }
                catch (IOException)
                {
                    // The request fails with the corruption message anyway.
                }
            }
            return Qcow2Error.CorruptException(message + "; image marked corrupt, further writes refused");
        }
        _corrupt = true;
        return Qcow2Error.CorruptException(message);
    }

    /// <summary>With lazy refcounts, marks the image dirty before the first metadata change. Under <see cref="_meta"/>.</summary>
    private async ValueTask MarkDirtyIfLazyAsync()
    {
        if (_dirtyMarked || !_refcounts.Lazy)
        {
            return;
        }
        _hc.Header.Incompatible |= IncompatibleFeatures.Dirty;
        await WriteIncompatibleAsync().ConfigureAwait(false);
        _dirtyMarked = true;
    }
}
