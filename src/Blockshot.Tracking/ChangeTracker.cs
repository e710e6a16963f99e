using System.Numerics;
using System.Runtime.CompilerServices;
using Blockshot.Core;
using Blockshot.Tracking.Persistence;

namespace Blockshot.Tracking;

/// <summary>
/// Changed-block tracking as a filter: every write, write-zeroes and trim marks its blocks with the
/// current period before it reaches the device. With a sidecar, the mark of a block's first change in
/// a period is durable before that write is issued (many first writes share one fdatasync); later
/// writes to marked blocks cost a byte comparison. Periods advance at snapshot takes; a frozen copy of
/// the map answers "what changed since period N" for that snapshot.
/// </summary>
public sealed partial class ChangeTracker : FilterNode
{
    private readonly int _blockShift;
    private readonly TrackerOptions _options;
    private readonly MapFile? _file;

    // Guarded by _sync: the generation, period and header sequence (periods change with the slot drained).
    private readonly object _sync = new();
    private Guid _generation;
    private string _reason;
    private byte _period;
    private uint _sequence;

    // Replaced only by a resize (with the device drained, under _commitLock and _sync); read once per request.
    private ChangeMap _map;
    private long _deviceSize;

    // The sidecar's coarse layer; replaced whenever a generation starts.
    private DurableRegions _regions;

    private ChangeTracker(BlockNode next, TrackerOptions options, MapFile? file, Guid generation, string reason, byte period, uint sequence)
        : base(next, Ownership.None)
    {
        _options = options;
        _blockShift = BitOperations.Log2((uint)options.BlockSize);
        _map = new ChangeMap((next.Size + options.BlockSize - 1) >> _blockShift);
        _file = file;
        _regions = NewRegions(_map);
        _generation = generation;
        _reason = reason;
        _period = period;
        _sequence = sequence;
        _deviceSize = next.Size;
    }

    /// <inheritdoc/>
    public override string Kind => "tracker";

    /// <summary>The device size the map covers.</summary>
    public long DeviceSize => Volatile.Read(ref _deviceSize);

    /// <summary>Bytes per tracking block.</summary>
    public int BlockSize => _options.BlockSize;

    /// <summary>Blocks the map covers (freezing the map is not needed to ask).</summary>
    public long BlockCount => Volatile.Read(ref _map).BlockCount;

    /// <summary>The current generation.</summary>
    public Guid Generation
    {
        get
        {
            lock (_sync)
            {
                return _generation;
            }
        }
    }

    /// <summary>The current period.</summary>
    public byte Period => Volatile.Read(ref _period);

    /// <summary>Raised when a new generation begins (a full backup is needed), with the reason.</summary>
    public event EventHandler<string>? GenerationStarted;

    /// <inheritdoc/>
    public override string Describe() => $"tracker(period {Period}) → {Next.Describe()}";

    /// <inheritdoc/>
    protected override NodeCapabilities ComputeCapabilities() => Next.Capabilities;

    /// <summary>What the tracker knows, for <c>cbt info</c>.</summary>
    public TrackerInfo Info()
    {
        lock (_sync)
        {
            var view = _map.Freeze();
            return new TrackerInfo(_generation, _reason, BlockSize, _period, view.CountChangedSince(0),
                view.CountChangedSince((byte)(_period - 1)), _map.MemoryBytes + Volatile.Read(ref _regions).MemoryBytes, _file is not null);
        }
    }

    /// <summary>The map as it is now.</summary>
    public FrozenMap Freeze() => Volatile.Read(ref _map).Freeze();

    /// <summary>
    /// The byte ranges of the blocks of <paramref name="map"/> that changed after period
    /// <paramref name="since"/>: adjacent blocks merged, the last one clipped to the device's end.
    /// </summary>
    public List<(long Offset, long Length)> ChangedRanges(FrozenMap map, byte since)
    {
        ArgumentNullException.ThrowIfNull(map);
        var ranges = new List<(long, long)>();
        long runStart = -1;
        for (long block = 0; block <= map.BlockCount; block++)
        {
            var changed = block < map.BlockCount && map.ChangedSince(block, since);
            if (changed && runStart < 0)
            {
                runStart = block;
            }
            else if (!changed && runStart >= 0)
            {
                var offset = runStart << _blockShift;
                ranges.Add((offset, Math.Min(block << _blockShift, DeviceSize) - offset));
                runStart = -1;
            }
        }
        return ranges;
    }

    /// <inheritdoc/>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public override async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, IoFlags flags)
    {
        await MarkAsync(offset, data.Length).ConfigureAwait(false);
        await Next.WriteAsync(offset, data, flags).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public override async ValueTask WriteZeroesAsync(long offset, long length, IoFlags flags)
    {
        await MarkAsync(offset, length).ConfigureAwait(false);
        await Next.WriteZeroesAsync(offset, length, flags).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public override async ValueTask TrimAsync(long offset, long length, IoFlags flags)
    {
        await MarkAsync(offset, length).ConfigureAwait(false);
        await Next.TrimAsync(offset, length, flags).ConfigureAwait(false);
    }

    /// <summary>
    /// Resizes the device, then starts a new generation with a map of the new size (the blocks past the
    /// old end were never tracked, and backups of the old size cannot be the base of an incremental).
    /// Call with the device's requests drained, as the daemon's <c>device resize</c> does.
    /// </summary>
    public override async ValueTask ResizeAsync(long newSize)
    {
        var oldSize = DeviceSize;
        await Next.ResizeAsync(newSize).ConfigureAwait(false);
        var size = Next.Size;
        if (size == oldSize)
        {
            return;
        }
        lock (_commitLock)
        {
            lock (_sync)
            {
                Volatile.Write(ref _map, new ChangeMap((size + BlockSize - 1) >> _blockShift));
                Volatile.Write(ref _deviceSize, size);
                StartGeneration($"the device was resized from {oldSize} to {size} bytes");
            }
        }
    }

    /// <summary>Marks a range as changed without writing it (<c>cbt mark-dirty</c>, writes to snapshot images).</summary>
    public ValueTask MarkDirtyAsync(long offset, long length)
    {
        RequestValidator.CheckRange(offset, length, DeviceSize);
        return MarkAsync(offset, length);
    }

    /// <summary>
    /// Ends the current period and begins the next, returning the map as it was at the end. Call with
    /// the device's slot drained (as a snapshot take does), so no write straddles the boundary. When the
    /// period number would wrap, a new generation begins instead.
    /// </summary>
    public FrozenMap AdvancePeriod()
    {
        var frozen = _map.Freeze();
        lock (_sync)
        {
            if (_period == byte.MaxValue)
            {
                StartGeneration("the period number wrapped around after 255 snapshots");
            }
            else
            {
                _period++;
                PersistHeader(clean: false);
            }
        }
        return frozen;
    }

    /// <summary>Starts a new generation (<c>cbt reset</c>): every block counts as changed for the next backup.</summary>
    public void Reset(string reason)
    {
        lock (_sync)
        {
            StartGeneration(reason);
        }
    }

    // Only a sidecar has durable marks to cover.
    private DurableRegions NewRegions(ChangeMap map) => _file is null
        ? new(0, 0)
        : new(map.BlockCount, Math.Max(0, BitOperations.Log2((uint)_options.DurableRegionSize) - _blockShift));

    /// <summary>The block range a byte range touches.</summary>
    internal (long First, long Last) Blocks(long offset, long length) => (offset >> _blockShift, (offset + length - 1) >> _blockShift);

    internal int BlockShift => _blockShift;

    private ValueTask MarkAsync(long offset, long length)
    {
        if (length <= 0)
        {
            return default;
        }
        Volatile.Write(ref _writesSinceHeartbeat, true);
        return HeartbeatIsStale ? new ValueTask(RenewThenMarkAsync(offset, length)) : MarkCoreAsync(offset, length);
    }

    private async Task RenewThenMarkAsync(long offset, long length)
    {
        await RenewHeartbeatAsync().ConfigureAwait(false);
        await MarkCoreAsync(offset, length).ConfigureAwait(false);
    }

    private ValueTask MarkCoreAsync(long offset, long length)
    {
        var (first, last) = Blocks(offset, length);
        var period = Volatile.Read(ref _period);
        var map = Volatile.Read(ref _map);
        if (last >= map.BlockCount)
        {
            return ValueTask.FromException(new BlockException(BlockError.Invalid, $"range {offset}:{length} is past the tracked device's end"));
        }
        var durable = _file is null || _persistenceBroken is not null;
        if (map.AllAtLeast(first, last, period))
        {
            // Marked already, but perhaps by a writer whose commit is still running: then this write
            // waits for that commit too. With no first write in progress this costs one read.
            return durable || Volatile.Read(ref _marking) == 0
                ? default
                : new ValueTask(UntilDurableAsync(first >> ChangeMap.PageShift, last >> ChangeMap.PageShift));
        }
        if (durable)
        {
            map.Mark(first, last, period, null);
            return default;
        }
        return new ValueTask(MarkDurablyAsync(map, first, last, period));
    }

    // Caller holds _sync.
    private void StartGeneration(string reason)
    {
        _map.Clear();
        Volatile.Write(ref _regions, NewRegions(_map));
        _generation = Guid.NewGuid();
        _reason = reason;
        _period = 1;
        if (_file is not null)
        {
            _file.SetPages(0);
            _file.SetPages(_map.PageCount);
        }
        PersistHeader(clean: false);
        GenerationStarted?.Invoke(this, reason);
    }
}
