using System.Numerics;
using System.Runtime.CompilerServices;
using Blockshot.Core;
using Blockshot.Core.Buffers;
using Blockshot.Snapshots.Cbw;
using Blockshot.Snapshots.Storage;

namespace Blockshot.Snapshots;

/// <summary>
/// The copy-before-write filter: sits in a device's slot while the device has snapshots. A write,
/// write-zeroes or trim that touches a chunk some snapshot still reads from the origin first copies
/// that chunk's old data to difference storage — once, shared by every snapshot that needs it — and
/// then proceeds. Writes to chunks every snapshot already has pass straight through.
/// </summary>
public sealed partial class CbwFilter : FilterNode
{
    // Chunk-aligned byte ranges: exclusive to copy a chunk or change any snapshot's entry for it;
    // shared to read a chunk from the origin on a snapshot's behalf (so no copy slips in between a
    // reader's table lookup and its origin read).
    private readonly RangeLock _locks = new();

    // Bit per chunk: every active snapshot has an entry for it, so writes need not copy. Set under
    // the chunk's exclusive lock; read lock-free (a stale zero only sends a write down the slow path).
    // Cleared when a snapshot is added, which happens with the device's slot drained.
    private readonly ChunkBitmap _covered;

    // Snapshots in take order. Replaced (copy on write) under _sync; read lock-free.
    private volatile Snapshot[] _snapshots = [];
    private readonly object _sync = new();
    private long _nextNumber = 1;

    // How many snapshot entries name each store slot: a dense array, 4 bytes per slot.
    private readonly SlotRefCounts _refs = new();

    private readonly BufferPool _pool;
    private readonly int _chunkShift;

    /// <summary>Creates the filter over <paramref name="origin"/>, storing old data in <paramref name="store"/>.</summary>
    public CbwFilter(BlockNode origin, DiffStore store, BufferPool? pool = null)
        : base(origin, Ownership.None)
    {
        ArgumentNullException.ThrowIfNull(store);
        if (!BitOperations.IsPow2(store.ChunkSize) || store.ChunkSize < origin.Capabilities.MinBlockSize)
        {
            throw new ArgumentException($"chunk size {store.ChunkSize} must be a power of two and at least the device's {origin.Capabilities.MinBlockSize}-byte minimum I/O size");
        }
        Store = store;
        ChunkSize = store.ChunkSize;
        _chunkShift = BitOperations.Log2((uint)ChunkSize);
        ChunkCount = (origin.Size + ChunkSize - 1) >> _chunkShift;
        OriginSize = origin.Size;
        _covered = new ChunkBitmap(ChunkCount);
        _pool = pool ?? BufferPool.Shared;
    }

    /// <inheritdoc/>
    public override string Kind => "cbw";

    /// <summary>Bytes per chunk.</summary>
    public int ChunkSize { get; }

    /// <summary>Chunks in the device.</summary>
    public long ChunkCount { get; }

    /// <summary>The device size when the filter was created (it cannot change while snapshots exist).</summary>
    public long OriginSize { get; }

    /// <summary>Where old data goes.</summary>
    public DiffStore Store { get; }

    /// <summary>The snapshots, oldest first.</summary>
    public IReadOnlyList<Snapshot> Snapshots => _snapshots;

    /// <summary>Memory the filter uses for its own bookkeeping (the coverage bitmap; tables are per snapshot).</summary>
    public long BitmapBytes => _covered.MemoryBytes;

    /// <summary>Memory held by the store slots' reference counts (4 bytes per slot up to the highest in use, in 64 KiB pages).</summary>
    public long RefCountBytes => _refs.MemoryBytes;

    /// <summary>Raised when a snapshot breaks.</summary>
    public event EventHandler<SnapshotFailedEventArgs>? SnapshotFailed;

    /// <inheritdoc/>
    public override string Describe() => $"cbw({_snapshots.Length} snapshot(s), {Store.Description}) → {Next.Describe()}";

    /// <inheritdoc/>
    protected override NodeCapabilities ComputeCapabilities() => Next.Capabilities.Without(NodeFeatures.Resize);

    /// <summary>
    /// Adds a snapshot of the device as it is now. The caller must hold the device's slot suspended
    /// (no request in flight), which is what makes the take a single instant. With persistence, the
    /// snapshot exists durably when this completes.
    /// </summary>
    public async Task<Snapshot> AddSnapshotAsync(string name, SnapshotOptions? options = null)
    {
        Snapshot snapshot;
        lock (_sync)
        {
            snapshot = new Snapshot(this, name, _nextNumber++, options ?? new SnapshotOptions(), ChunkCount);
            _snapshots = [.. _snapshots, snapshot];
            _covered.ClearAll();
        }
        if (_log is not null)
        {
            try
            {
                await _log.AppendAsync(CreatedRecord(snapshot)).ConfigureAwait(false);
            }
            catch (IOException)
            {
                await RemoveSnapshotAsync(snapshot).ConfigureAwait(false);
                throw;
            }
        }
        return snapshot;
    }

    /// <summary>Destroys a snapshot and releases its storage; the other snapshots are untouched.</summary>
    public async Task RemoveSnapshotAsync(Snapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        using (await _locks.AcquireAsync(0, Math.Max(1, ChunkCount << _chunkShift)).ConfigureAwait(false))
        {
            lock (_sync)
            {
                _snapshots = [.. _snapshots.Where(s => s != snapshot)];
            }
            snapshot.State = SnapshotState.Destroyed;
            await ReleaseEntriesAsync(snapshot).ConfigureAwait(false);
        }
        await RecordBestEffortAsync(new Persistence.LogRecord(Persistence.LogRecordType.Removed, snapshot.Number)).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public override async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, IoFlags flags)
    {
        await ProtectAsync(offset, data.Length).ConfigureAwait(false);
        await Next.WriteAsync(offset, data, flags).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public override async ValueTask WriteZeroesAsync(long offset, long length, IoFlags flags)
    {
        await ProtectAsync(offset, length).ConfigureAwait(false);
        await Next.WriteZeroesAsync(offset, length, flags).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public override async ValueTask TrimAsync(long offset, long length, IoFlags flags)
    {
        await ProtectAsync(offset, length).ConfigureAwait(false);
        await Next.TrimAsync(offset, length, flags).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public override ValueTask ResizeAsync(long newSize) =>
        ValueTask.FromException(new BlockException(BlockError.NotSupported, "the device cannot be resized while it has snapshots"));

    /// <summary>Makes sure every snapshot has its own copy of each chunk the range touches.</summary>
    private ValueTask ProtectAsync(long offset, long length)
    {
        if (length <= 0 || _snapshots.Length == 0)
        {
            return default;
        }
        _writesSinceHeartbeat = true;
        return HeartbeatIsStale ? RenewThenCopyAsync(offset, length) : CopyUncoveredAsync(offset, length);
    }

    /// <summary>Copies the chunks of the range that no snapshot has its own copy of yet.</summary>
    private ValueTask CopyUncoveredAsync(long offset, long length)
    {
        var first = offset >> _chunkShift;
        var last = (offset + length - 1) >> _chunkShift;
        return _covered.AllSet(first, last) ? default : CopyChunksAsync(first, last);
    }

    private async ValueTask RenewThenCopyAsync(long offset, long length)
    {
        await RenewHeartbeatAsync().ConfigureAwait(false);
        await CopyUncoveredAsync(offset, length).ConfigureAwait(false);
    }

    internal long ChunkOffset(long chunk) => chunk << _chunkShift;

    internal long ChunkOf(long offset) => offset >> _chunkShift;

    internal int ChunkLength(long chunk) => (int)Math.Min(ChunkSize, OriginSize - (chunk << _chunkShift));

    internal RangeLock Locks => _locks;

    internal BufferPool Pool => _pool;

    internal void AddRef(long slot, int count) => _refs.Add(slot, count);

    internal int RefCount(long slot) => _refs[slot];

    /// <summary>Drops one reference to a slot; frees it when none is left.</summary>
    internal ValueTask ReleaseSlotAsync(long slot) => _refs.Release(slot) ? Store.FreeAsync(slot) : default;

    // Caller holds the whole-device exclusive lock. The table is emptied, so releasing twice is harmless.
    private async ValueTask ReleaseEntriesAsync(Snapshot snapshot)
    {
        var slots = new List<long>();
        snapshot.Table.ForEach((_, entry) =>
        {
            if (ChunkTable.IsSlot(entry))
            {
                slots.Add(ChunkTable.ToSlot(entry));
            }
        });
        snapshot.Table.Clear();
        foreach (var slot in slots)
        {
            await ReleaseSlotAsync(slot).ConfigureAwait(false);
        }
    }

    private void Fail(Snapshot snapshot, string reason)
    {
        if (snapshot.MarkFailed(reason))
        {
            _ = RecordBestEffortAsync(new Persistence.LogRecord(Persistence.LogRecordType.Failed, snapshot.Number, Text: reason));
            SnapshotFailed?.Invoke(this, new SnapshotFailedEventArgs(snapshot, reason, DateTimeOffset.UtcNow));
        }
    }
}
