namespace Blockshot.Qcow2.Internal;

/// <summary>
/// A write-back cache of fixed-size metadata pieces (L2 table slices or refcount blocks), keyed by file
/// offset, evicting the least recently used unpinned entry. Ordering between caches is expressed as in
/// the format's crash rules: <see cref="DependsOn"/> names a cache that must be flushed (written and
/// synced) before any entry of this one is written, and <see cref="DependsOnFlush"/> asks for a plain
/// sync of the files first (data written before the metadata that points at it).
/// Not thread-safe: every call happens under the image's metadata lock.
/// </summary>
internal sealed class MetadataCache
{
    private readonly Dictionary<long, Entry> _entries = [];
    private readonly LinkedList<Entry> _lru = new();
    private readonly ImageFile _file;
    private readonly Func<ValueTask> _syncFiles;
    private int _dirtyCount;

    public MetadataCache(string name, ImageFile file, int entrySize, int capacity, Func<ValueTask> syncFiles)
    {
        Name = name;
        _file = file;
        EntrySize = entrySize;
        Capacity = Math.Max(2, capacity);
        _syncFiles = syncFiles;
    }

    public string Name { get; }

    public int EntrySize { get; }

    public int Capacity { get; }

    public int Count => _entries.Count;

    public bool HasDirty => _dirtyCount > 0;

    /// <summary>A cache whose contents must be durable before any entry of this cache is written.</summary>
    public MetadataCache? DependsOn { get; private set; }

    /// <summary>When set, the files are synced before any entry of this cache is written.</summary>
    public bool DependsOnFlush { get; set; }

    /// <summary>Called before an entry is written, to refuse writes that would hit other metadata.</summary>
    public Action<long, int>? BeforeWrite { get; set; }

    public sealed class Entry
    {
        public Entry(long offset, byte[] data)
        {
            Offset = offset;
            Data = data;
        }

        public long Offset { get; set; }

        public byte[] Data { get; }

        public bool Dirty { get; set; }

        public int Pins { get; set; }

        public LinkedListNode<Entry>? Node { get; set; }
    }

    /// <summary>Returns the pinned entry at <paramref name="offset"/>, reading it on a miss.</summary>
    public async ValueTask<Entry> GetAsync(long offset)
    {
        if (_entries.TryGetValue(offset, out var hit))
        {
            Touch(hit);
            hit.Pins++;
            return hit;
        }
        await MakeRoomAsync().ConfigureAwait(false);
        var data = new byte[EntrySize];
        await _file.ReadAsync(offset, data).ConfigureAwait(false);
        if (_entries.TryGetValue(offset, out hit))
        {
            // Loaded meanwhile by eviction write-back paths (not expected, but harmless).
            Touch(hit);
            hit.Pins++;
            return hit;
        }
        return Insert(offset, data);
    }

    /// <summary>Returns a pinned zero-filled (or copied) entry at <paramref name="offset"/> without reading it.</summary>
    public async ValueTask<Entry> GetEmptyAsync(long offset, ReadOnlyMemory<byte> initial = default)
    {
        if (_entries.TryGetValue(offset, out var hit))
        {
            hit.Data.AsSpan().Clear();
            initial.Span.CopyTo(hit.Data);
            Touch(hit);
            hit.Pins++;
            return hit;
        }
        await MakeRoomAsync().ConfigureAwait(false);
        var data = new byte[EntrySize];
        initial.Span.CopyTo(data);
        return Insert(offset, data);
    }

    /// <summary>Unpins an entry.</summary>
    public static void Release(Entry entry) => entry.Pins--;

    /// <summary>Marks an entry as modified.</summary>
    public void MarkDirty(Entry entry)
    {
        if (!entry.Dirty)
        {
            entry.Dirty = true;
            _dirtyCount++;
        }
    }

    /// <summary>The entry at <paramref name="offset"/> if cached, without pinning.</summary>
    public Entry? Peek(long offset) => _entries.TryGetValue(offset, out var e) ? e : null;

    /// <summary>
    /// Declares that <paramref name="dependency"/> must be flushed before this cache writes. Cycles are
    /// resolved as they would form: a cache that already depends on another is flushed first.
    /// </summary>
    public async ValueTask SetDependencyAsync(MetadataCache dependency)
    {
        if (dependency.DependsOn is not null)
        {
            await dependency.FlushDependencyAsync().ConfigureAwait(false);
        }
        if (DependsOn is not null && DependsOn != dependency)
        {
            await FlushDependencyAsync().ConfigureAwait(false);
        }
        DependsOn = dependency;
    }

    /// <summary>Writes every dirty entry (after satisfying dependencies); does not sync.</summary>
    public async ValueTask WriteBackAsync()
    {
        if (_dirtyCount == 0)
        {
            return;
        }
        await ResolveDependenciesAsync().ConfigureAwait(false);
        var dirty = new List<Entry>(_dirtyCount);
        foreach (var e in _entries.Values)
        {
            if (e.Dirty)
            {
                dirty.Add(e);
            }
        }
        dirty.Sort((a, b) => a.Offset.CompareTo(b.Offset));
        foreach (var e in dirty)
        {
            await WriteEntryAsync(e).ConfigureAwait(false);
        }
    }

    /// <summary>Writes every dirty entry and syncs the files.</summary>
    public async ValueTask FlushAsync()
    {
        await WriteBackAsync().ConfigureAwait(false);
        await _syncFiles().ConfigureAwait(false);
    }

    /// <summary>
    /// Writes a whole piece of metadata straight to the file, honouring this cache's dependencies, and
    /// drops any cached entries it covers.
    /// </summary>
    public async ValueTask WriteThroughAsync(long offset, ReadOnlyMemory<byte> data)
    {
        await ResolveDependenciesAsync().ConfigureAwait(false);
        BeforeWrite?.Invoke(offset, data.Length);
        Drop(offset, data.Length);
        await _file.WriteAsync(offset, data).ConfigureAwait(false);
    }

    /// <summary>Drops entries inside <c>[offset, offset + length)</c> without writing them (the clusters were freed).</summary>
    public void Drop(long offset, long length)
    {
        if (_entries.Count == 0)
        {
            return;
        }
        var end = offset + length;
        if (length <= (long)EntrySize * 64)
        {
            for (var o = offset - (offset % EntrySize); o < end; o += EntrySize)
            {
                if (_entries.TryGetValue(o, out var e))
                {
                    Remove(e);
                }
            }
            return;
        }
        var victims = new List<Entry>();
        foreach (var e in _entries.Values)
        {
            if (e.Offset < end && offset < e.Offset + EntrySize)
            {
                victims.Add(e);
            }
        }
        foreach (var e in victims)
        {
            Remove(e);
        }
    }

    /// <summary>Forgets every entry (dirty ones are lost; used after the image is closed or on failure).</summary>
    public void Clear()
    {
        _entries.Clear();
        _lru.Clear();
        _dirtyCount = 0;
    }

    private void Remove(Entry e)
    {
        if (e.Dirty)
        {
            _dirtyCount--;
            e.Dirty = false;
        }
        _entries.Remove(e.Offset);
        if (e.Node is not null)
        {
            _lru.Remove(e.Node);
            e.Node = null;
        }
    }

    private async ValueTask FlushDependencyAsync()
    {
        var dep = DependsOn;
        if (dep is not null)
        {
            await dep.FlushAsync().ConfigureAwait(false);
        }
        DependsOn = null;
        DependsOnFlush = false;
    }

    private async ValueTask ResolveDependenciesAsync()
    {
        if (DependsOn is not null)
        {
            await FlushDependencyAsync().ConfigureAwait(false);
        }
        else if (DependsOnFlush)
        {
            await _syncFiles().ConfigureAwait(false);
            DependsOnFlush = false;
        }
    }

    private async ValueTask WriteEntryAsync(Entry e)
    {
        if (!e.Dirty)
        {
            return;
        }
        BeforeWrite?.Invoke(e.Offset, EntrySize);
        await _file.WriteAsync(e.Offset, e.Data).ConfigureAwait(false);
        e.Dirty = false;
        _dirtyCount--;
    }

    private Entry Insert(long offset, byte[] data)
    {
        var entry = new Entry(offset, data) { Pins = 1 };
        entry.Node = _lru.AddFirst(entry);
        _entries[offset] = entry;
        return entry;
    }

    private void Touch(Entry e)
    {
        if (e.Node is not null && e.Node != _lru.First)
        {
            _lru.Remove(e.Node);
            _lru.AddFirst(e.Node);
        }
    }

    private async ValueTask MakeRoomAsync()
    {
        while (_entries.Count >= Capacity)
        {
            Entry? victim = null;
            for (var node = _lru.Last; node is not null; node = node.Previous)
            {
                if (node.Value.Pins == 0)
                {
                    victim = node.Value;
                    break;
                }
            }
            if (victim is null)
            {
                return; // Everything pinned: grow past capacity for now.
            }
            if (victim.Dirty)
            {
                await ResolveDependenciesAsync().ConfigureAwait(false);
                await WriteEntryAsync(victim).ConfigureAwait(false);
                if (victim.Pins != 0 || !_entries.ContainsKey(victim.Offset))
                {
                    continue;
                }
            }
            Remove(victim);
        }
    }
}
