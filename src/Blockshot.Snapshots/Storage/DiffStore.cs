namespace Blockshot.Snapshots.Storage;

/// <summary>
/// Difference storage: a pool of chunk-sized slots holding old data. Slots are handed out by a bump
/// pointer, reused after they are freed, and the store grows in steps up to its limit. Concrete
/// stores say how to grow and how to move bytes.
/// </summary>
public abstract class DiffStore : IAsyncDisposable
{
    // Guards _next, _free, _capacitySlots and the event latches.
    private readonly object _sync = new();
    private readonly Stack<long> _free = new();
    private readonly SemaphoreSlim _growing = new(1, 1);
    private long _next;
    private long _capacitySlots;
    private bool _lowSpaceRaised;

    // The background grow started when space runs low (StartGrowingAhead), if any; a failed one is not retried
    // in the background (the foreground grow reports the failure).
    private Task _growAhead = Task.CompletedTask;
    private bool _growAheadFailed;

    // Free space kept grown ahead of the writers; -1: half a growth step.
    private long _keepAheadBytes = -1;

    /// <summary>Sets up slot bookkeeping for <paramref name="chunkSize"/>-byte chunks.</summary>
    protected DiffStore(int chunkSize, DiffStoreOptions options)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkSize, 512);
        ChunkSize = chunkSize;
        Options = options;
    }

    /// <summary>Bytes per slot.</summary>
    public int ChunkSize { get; }

    /// <summary>The sizing rules.</summary>
    public DiffStoreOptions Options { get; }

    /// <summary>A short description: kind and location.</summary>
    public abstract string Description { get; }

    /// <summary>Raised once when free space before the limit falls below the threshold (again after it recovers).</summary>
    public event EventHandler<DiffStoreEventArgs>? LowSpace;

    /// <summary>Raised each time an allocation fails because the store is at its limit.</summary>
    public event EventHandler<DiffStoreEventArgs>? Full;

    /// <summary>Bytes held by allocated slots.</summary>
    public virtual long UsedBytes
    {
        get
        {
            lock (_sync)
            {
                return (_next - _free.Count) * ChunkSize;
            }
        }
    }

    /// <summary>Why the store last failed to grow, if it did; the full store's error messages quote it.</summary>
    public string? GrowFailure { get; private set; }

    /// <summary>
    /// Free space the store grows ahead of its writers, in the background: half a growth step unless a
    /// store in front of this one asks for more (a RAM tier asks for its own size, so that while the RAM
    /// has room no writer waits for this medium to grow).
    /// </summary>
    public long KeepAheadBytes
    {
        get
        {
            var bytes = Volatile.Read(ref _keepAheadBytes);
            return bytes < 0 ? Options.GrowStepBytes / 2 : bytes;
        }
        set => Volatile.Write(ref _keepAheadBytes, Math.Max(0, value));
    }

    /// <summary>Bytes the store can hold before it must grow.</summary>
    public virtual long CapacityBytes => Volatile.Read(ref _capacitySlots) * ChunkSize;

    /// <summary>The most the store may hold, in bytes.</summary>
    public virtual long LimitBytes => Math.Min(Options.LimitBytes, MediumLimitBytes);

    /// <summary>The most the underlying medium can hold (a device's size, say).</summary>
    protected virtual long MediumLimitBytes => long.MaxValue;

    /// <summary>Makes room for at least <paramref name="bytes"/>; returns the capacity reached.</summary>
    protected abstract ValueTask<long> GrowToAsync(long bytes);

    /// <summary>Writes <paramref name="data"/> at <paramref name="offset"/> inside slot <paramref name="slot"/>.</summary>
    public abstract ValueTask WriteAsync(long slot, int offset, ReadOnlyMemory<byte> data);

    /// <summary>Reads from slot <paramref name="slot"/> at <paramref name="offset"/>.</summary>
    public abstract ValueTask ReadAsync(long slot, int offset, Memory<byte> buffer);

    /// <summary>
    /// Reads <paramref name="buffer"/>.Length bytes starting <paramref name="offset"/> bytes into slot
    /// <paramref name="firstSlot"/> and running on through the slots after it (<c>firstSlot + 1</c>, ...).
    /// Stores whose consecutive slots are adjacent on the medium read the run at once.
    /// </summary>
    public virtual async ValueTask ReadRunAsync(long firstSlot, int offset, Memory<byte> buffer)
    {
        var slot = firstSlot;
        while (!buffer.IsEmpty)
        {
            var n = Math.Min(buffer.Length, ChunkSize - offset);
            await ReadAsync(slot, offset, buffer[..n]).ConfigureAwait(false);
            buffer = buffer[n..];
            offset = 0;
            slot++;
        }
    }

    /// <summary>Makes every written slot durable.</summary>
    public abstract ValueTask FlushAsync();

    /// <summary>Where a slot's data lives (see <see cref="CopyOrder"/>).</summary>
    public virtual uint Tier(long slot) => CopyOrder.Disk;

    /// <summary>Releases the medium's space behind a freed slot, where it can.</summary>
    protected virtual ValueTask ReleaseAsync(long slot) => default;

    /// <summary>
    /// Takes a free slot, growing the store if needed; -1 when the store is at its limit. Once less than
    /// half a growth step is left, the next step is added in the background, so a writer waits for the
    /// medium to grow only when the space runs out faster than it grows.
    /// </summary>
    public virtual async ValueTask<long> AllocateAsync()
    {
        if (TryTake(out var slot, out var runningLow))
        {
            if (runningLow)
            {
                StartGrowingAhead();
            }
            return slot;
        }
        await _growing.WaitAsync().ConfigureAwait(false);
        try
        {
            if (TryTake(out slot, out runningLow)
                || (await GrowStepAsync().ConfigureAwait(false) && TryTake(out slot, out runningLow)))
            {
                return slot;
            }
        }
        catch (IOException e)
        {
            // The medium would not grow (out of space, an I/O error): the store is full for this
            // allocation, and the snapshots' overflow policy decides what happens to the write.
            GrowFailure = e.Message;
        }
        finally
        {
            _growing.Release();
            if (slot >= 0 && runningLow)
            {
                // One step may leave less free than the store keeps ahead (a RAM tier's worth): go on behind.
                StartGrowingAhead();
            }
        }
        OnFull();
        return -1;
    }

    /// <summary>
    /// Grows an empty store to its initial size now, before any writer needs a slot (at the take: the
    /// first copies then do not wait for the medium), and starts growing ahead in the background if the
    /// store keeps more free than that. Throws <see cref="IOException"/> if the medium will not grow.
    /// </summary>
    public virtual async ValueTask PrepareAsync()
    {
        bool runningLow;
        await _growing.WaitAsync().ConfigureAwait(false);
        try
        {
            if (CapacityBytes == 0)
            {
                await GrowStepAsync().ConfigureAwait(false);
            }
            lock (_sync)
            {
                runningLow = RunningLow();
            }
        }
        finally
        {
            _growing.Release();
        }
        if (runningLow)
        {
            StartGrowingAhead();
        }
    }

    /// <summary>Adds one growth step (the initial size first), up to the limit; false at the limit. Caller holds <see cref="_growing"/>.</summary>
    private async ValueTask<bool> GrowStepAsync()
    {
        var current = CapacityBytes;
        var limit = LimitBytes;
        if (current + ChunkSize > limit)
        {
            return false;
        }
        var step = Math.Max(current == 0 ? Options.InitialBytes : Options.GrowStepBytes, ChunkSize);
        var target = Math.Min(limit, current + step);
        var reached = Math.Min(limit, await GrowToAsync(target - (target % ChunkSize)).ConfigureAwait(false));
        Volatile.Write(ref _capacitySlots, Math.Max(_capacitySlots, reached / ChunkSize));
        return true;
    }

    private void StartGrowingAhead()
    {
        if (!_growing.Wait(0))
        {
            return; // a grow is under way
        }
        lock (_sync)
        {
            _growAhead = Task.Run(GrowAheadAsync);
        }
    }

    // Grows step by step until the store is no longer low. Between steps it gives the grow turn back: a
    // writer that found no free slot and waits for the turn takes it, and grows in the foreground itself.
    private async Task GrowAheadAsync()
    {
        var holding = true;
        try
        {
            while (true)
            {
                bool runningLow;
                lock (_sync)
                {
                    runningLow = RunningLow();
                }
                if (!runningLow || !await GrowStepAsync().ConfigureAwait(false))
                {
                    break;
                }
                _growing.Release();
                holding = _growing.Wait(0);
                if (!holding)
                {
                    break;
                }
            }
        }
        catch (IOException)
        {
            // Not lost: the writer that finds no free slot grows in the foreground and gets the error.
            Volatile.Write(ref _growAheadFailed, true);
        }
        finally
        {
            if (holding)
            {
                _growing.Release();
            }
        }
    }

    // Caller holds _sync. Less than the keep-ahead space is free, and the store may still grow.
    private bool RunningLow() =>
        !Volatile.Read(ref _growAheadFailed)
        && (_capacitySlots - _next + _free.Count) * ChunkSize < KeepAheadBytes
        && (_capacitySlots + 1) * ChunkSize <= LimitBytes;

    /// <summary>
    /// After a restart: marks <paramref name="used"/> slots as taken and every other slot below the
    /// highest as free, growing the capacity to cover them.
    /// </summary>
    public virtual async ValueTask RestoreAsync(IReadOnlySet<long> used)
    {
        ArgumentNullException.ThrowIfNull(used);
        var next = used.Count == 0 ? 0 : used.Max() + 1;
        if (next * ChunkSize > CapacityBytes)
        {
            var reached = await GrowToAsync(next * ChunkSize).ConfigureAwait(false);
            Volatile.Write(ref _capacitySlots, Math.Max(_capacitySlots, reached / ChunkSize));
        }
        lock (_sync)
        {
            _next = next;
            _free.Clear();
            for (var slot = next - 1; slot >= 0; slot--)
            {
                if (!used.Contains(slot))
                {
                    _free.Push(slot);
                }
            }
        }
    }

    /// <summary>Gives a slot back for reuse.</summary>
    public virtual async ValueTask FreeAsync(long slot)
    {
        await ReleaseAsync(slot).ConfigureAwait(false);
        lock (_sync)
        {
            _free.Push(slot);
            if (_lowSpaceRaised && !BelowThreshold())
            {
                _lowSpaceRaised = false;
            }
        }
    }

    /// <inheritdoc/>
    public virtual async ValueTask DisposeAsync()
    {
        Task growAhead;
        lock (_sync)
        {
            growAhead = _growAhead;
        }
        await growAhead.ConfigureAwait(false);
        _growing.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>Sets the capacity a store starts with (a device's size, a reopened file's length).</summary>
    protected void SetCapacity(long bytes) => Volatile.Write(ref _capacitySlots, Math.Min(bytes, LimitBytes) / ChunkSize);

    private bool TryTake(out long slot, out bool runningLow)
    {
        var raise = false;
        lock (_sync)
        {
            if (_free.Count > 0)
            {
                slot = _free.Pop();
            }
            else if (_next < _capacitySlots)
            {
                slot = _next++;
            }
            else
            {
                slot = -1;
                runningLow = false;
                return false;
            }
            if (!_lowSpaceRaised && BelowThreshold())
            {
                _lowSpaceRaised = raise = true;
            }
            runningLow = RunningLow();
        }
        if (raise)
        {
            OnLowSpace();
        }
        return true;
    }

    // Caller holds _sync.
    private bool BelowThreshold()
    {
        var limit = LimitBytes;
        if (limit == long.MaxValue)
        {
            return false;
        }
        var used = (_next - _free.Count) * ChunkSize;
        return limit - used < limit * Options.LowSpaceFraction;
    }

    /// <summary>Raises <see cref="LowSpace"/>.</summary>
    protected void OnLowSpace() => LowSpace?.Invoke(this, Snapshot());

    /// <summary>Raises <see cref="Full"/>.</summary>
    protected void OnFull() => Full?.Invoke(this, Snapshot());

    private DiffStoreEventArgs Snapshot() => new(Description, UsedBytes, LimitBytes, DateTimeOffset.UtcNow);
}
