namespace Blockshot.Snapshots.Storage;

/// <summary>
/// Several stores used in order: when one is at its limit, the next takes new chunks. A slot number
/// carries its store's index in its top bits (up to 15 stores of 2^28 slots each).
/// </summary>
public sealed class MultiDiffStore : DiffStore
{
    private const int Shift = 28;
    private const long InnerMask = (1L << Shift) - 1;
    private readonly DiffStore[] _stores;

    /// <summary>Uses <paramref name="stores"/> (same chunk size) in the order given.</summary>
    public MultiDiffStore(IReadOnlyList<DiffStore> stores)
        : base(First(stores).ChunkSize, new DiffStoreOptions())
    {
        if (stores.Count > 15)
        {
            throw new ArgumentException("at most 15 stores", nameof(stores));
        }
        foreach (var s in stores)
        {
            if (s.ChunkSize != ChunkSize)
            {
                throw new ArgumentException("every store must use the same chunk size", nameof(stores));
            }
        }
        _stores = [.. stores];
        _stores[^1].LowSpace += (_, _) => OnLowSpace();
    }

    /// <inheritdoc/>
    public override string Description => "multi(" + string.Join(", ", _stores.Select(s => s.Description)) + ")";

    /// <inheritdoc/>
    public override long UsedBytes => _stores.Sum(s => s.UsedBytes);

    /// <inheritdoc/>
    public override long CapacityBytes => _stores.Sum(s => s.CapacityBytes);

    /// <inheritdoc/>
    public override long LimitBytes => _stores.Sum(s => Math.Min(s.LimitBytes, long.MaxValue / 16));

    /// <inheritdoc/>
    public override async ValueTask<long> AllocateAsync()
    {
        for (var i = 0; i < _stores.Length; i++)
        {
            var slot = await _stores[i].AllocateAsync().ConfigureAwait(false);
            if (slot >= 0)
            {
                return ((long)i << Shift) | slot;
            }
        }
        OnFull();
        return -1;
    }

    /// <inheritdoc/>
    public override ValueTask PrepareAsync() => _stores[0].PrepareAsync();

    /// <inheritdoc/>
    public override async ValueTask RestoreAsync(IReadOnlySet<long> used)
    {
        for (var i = 0; i < _stores.Length; i++)
        {
            var index = i;
            await _stores[i].RestoreAsync(used.Where(s => s >> Shift == index).Select(s => s & InnerMask).ToHashSet()).ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    public override ValueTask FreeAsync(long slot) => _stores[slot >> Shift].FreeAsync(slot & InnerMask);

    /// <inheritdoc/>
    protected override ValueTask<long> GrowToAsync(long bytes) => new(CapacityBytes);

    /// <inheritdoc/>
    public override ValueTask WriteAsync(long slot, int offset, ReadOnlyMemory<byte> data) =>
        _stores[slot >> Shift].WriteAsync(slot & InnerMask, offset, data);

    /// <inheritdoc/>
    public override ValueTask ReadAsync(long slot, int offset, Memory<byte> buffer) =>
        _stores[slot >> Shift].ReadAsync(slot & InnerMask, offset, buffer);

    /// <inheritdoc/>
    public override uint Tier(long slot) => _stores[slot >> Shift].Tier(slot & InnerMask);

    /// <inheritdoc/>
    public override async ValueTask FlushAsync()
    {
        foreach (var s in _stores)
        {
            await s.FlushAsync().ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    public override async ValueTask DisposeAsync()
    {
        foreach (var s in _stores)
        {
            await s.DisposeAsync().ConfigureAwait(false);
        }
        await base.DisposeAsync().ConfigureAwait(false);
    }

    private static DiffStore First(IReadOnlyList<DiffStore> stores)
    {
        ArgumentNullException.ThrowIfNull(stores);
        return stores.Count > 0 ? stores[0] : throw new ArgumentException("at least one store", nameof(stores));
    }
}
