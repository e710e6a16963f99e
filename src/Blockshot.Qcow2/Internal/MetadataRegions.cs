namespace Blockshot.Qcow2.Internal;

/// <summary>
/// The host clusters known to hold metadata (header, tables, refcount blocks, snapshot and bitmap
/// structures). The allocator refuses to hand one out for data: if it ever tries, the refcounts are
/// corrupt and writing would destroy metadata. Guarded by the image's metadata lock.
/// </summary>
internal sealed class MetadataRegions
{
    private readonly Dictionary<long, int> _clusters = [];
    private readonly int _clusterBits;

    public MetadataRegions(int clusterBits)
    {
        _clusterBits = clusterBits;
    }

    public int Count => _clusters.Count;

    /// <summary>Records the clusters of <c>[offset, offset + length)</c> (counted, so shared tables nest).</summary>
    public void Add(long offset, long length)
    {
        if (length <= 0 || offset < 0)
        {
            return;
        }
        var first = offset >> _clusterBits;
        var last = (offset + length - 1) >> _clusterBits;
        for (var c = first; c <= last && c - first < (1 << 22); c++)
        {
            _clusters[c] = _clusters.TryGetValue(c, out var n) ? n + 1 : 1;
        }
    }

    /// <summary>Forgets one record of the clusters of <c>[offset, offset + length)</c>.</summary>
    public void Remove(long offset, long length)
    {
        if (length <= 0 || offset < 0)
        {
            return;
        }
        var first = offset >> _clusterBits;
        var last = (offset + length - 1) >> _clusterBits;
        for (var c = first; c <= last && c - first < (1 << 22); c++)
        {
            if (_clusters.TryGetValue(c, out var n))
            {
                if (n <= 1)
                {
                    _clusters.Remove(c);
                }
                else
                {
                    _clusters[c] = n - 1;
                }
            }
        }
    }

    /// <summary>True when host cluster <paramref name="cluster"/> holds metadata.</summary>
    public bool Contains(long cluster) => _clusters.ContainsKey(cluster);

    /// <summary>True when any cluster of <c>[offset, offset + length)</c> holds metadata.</summary>
    public bool Overlaps(long offset, long length)
    {
        if (length <= 0)
        {
            return false;
        }
        var first = offset >> _clusterBits;
        var last = (offset + length - 1) >> _clusterBits;
        if (last - first > _clusters.Count)
        {
            foreach (var c in _clusters.Keys)
            {
                if (c >= first && c <= last)
                {
                    return true;
                }
            }
            return false;
        }
        for (var c = first; c <= last; c++)
        {
            if (_clusters.ContainsKey(c))
            {
                return true;
            }
        }
        return false;
    }

    public void Clear() => _clusters.Clear();
}
