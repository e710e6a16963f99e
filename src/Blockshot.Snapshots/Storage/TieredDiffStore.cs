using System.Threading.Channels;
using Blockshot.Core.Buffers;

namespace Blockshot.Snapshots.Storage;

/// <summary>
/// A RAM tier in front of another store. A chunk written here lands in memory and the writer goes on
/// at once; a background flusher moves chunks down to the backing store and frees the memory. Only
/// when the RAM tier is full do writers wait for the backing store. Slots are the backing store's
/// (allocated there at once), so capacity and limits are the backing store's; it keeps the RAM's size
/// grown ahead in the background.
/// </summary>
public sealed class TieredDiffStore : DiffStore
{
    private readonly DiffStore _backing;
    private readonly BufferPool _pool;
    private readonly int _maxRamChunks;

    // Guarded by _sync: chunks held in RAM, by slot, and chunk buffers the store keeps for reuse. Buffers
    // stay with the store until it is disposed: fresh memory costs a page fault per page on first touch
    // (on a VM, most of a copy's time), so the RAM is touched once, at the take, and then recycled.
    private readonly object _sync = new();
    private readonly Dictionary<long, RamChunk> _ram = [];
    private readonly Stack<PooledBuffer> _spare = new();

    private readonly Channel<long> _queue = Channel.CreateUnbounded<long>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _flusher;
    private TaskCompletionSource _idle = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Exception? _flushError;

    // Guarded by _sync: the slot the flusher is writing to the backing store now (-1: none), and what
    // completes when that write is over. A slot being flushed goes back to the backing store only after
    // the write, or the stale data could land on the slot's next owner.
    private long _flushingSlot = -1;
    private Task _flushingDone = Task.CompletedTask;

    /// <summary>Puts up to <paramref name="ramBytes"/> of chunks in memory in front of <paramref name="backing"/>.</summary>
    public TieredDiffStore(DiffStore backing, long ramBytes, BufferPool? pool = null)
        : base(Backing(backing).ChunkSize, backing.Options)
    {
        _backing = backing;
        _pool = pool ?? BufferPool.Shared;
        _maxRamChunks = (int)Math.Clamp(ramBytes / backing.ChunkSize, 1, int.MaxValue);
        // Slots come from the backing store at once: it keeps the RAM's worth grown ahead, so a slow
        // medium's growth does not reach the writers while the RAM has room.
        backing.KeepAheadBytes = Math.Max(backing.KeepAheadBytes, (long)_maxRamChunks * backing.ChunkSize);
        _idle.SetResult();
        _backing.LowSpace += (_, _) => OnLowSpace();
        _backing.Full += (_, _) => OnFull();
        _flusher = Task.Run(FlushLoopAsync);
    }

    /// <inheritdoc/>
    public override string Description => $"tiered(ram {(long)_maxRamChunks * ChunkSize >> 20} MiB, {_backing.Description})";

    /// <summary>Chunks currently held in RAM.</summary>
    public int RamChunks
    {
        get
        {
            lock (_sync)
            {
                return _ram.Count;
            }
        }
    }

    /// <inheritdoc/>
    public override long UsedBytes => _backing.UsedBytes;

    /// <inheritdoc/>
    public override long CapacityBytes => _backing.CapacityBytes;

    /// <inheritdoc/>
    public override long LimitBytes => _backing.LimitBytes;

    /// <inheritdoc/>
    public override ValueTask<long> AllocateAsync() => _backing.AllocateAsync();

    /// <summary>
    /// Takes and touches the whole RAM tier now (at the take), so no copy pays for fresh memory, then
    /// prepares the backing store.
    /// </summary>
    public override async ValueTask PrepareAsync()
    {
        int missing;
        lock (_sync)
        {
            missing = _maxRamChunks - _spare.Count - _ram.Count;
        }
        // Touching takes a while (0.7 s for 512 MiB on a VM): not under the lock.
        var fresh = new PooledBuffer[Math.Max(0, missing)];
        for (var i = 0; i < fresh.Length; i++)
        {
            fresh[i] = _pool.Rent(ChunkSize);
            fresh[i].Span.Clear();
        }
        lock (_sync)
        {
            foreach (var buffer in fresh)
            {
                _spare.Push(buffer);
            }
        }
        await _backing.PrepareAsync().ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public override async ValueTask FreeAsync(long slot)
    {
        Task? flushing = null;
        lock (_sync)
        {
            if (_ram.Remove(slot, out var chunk))
            {
                _spare.Push(chunk.Buffer);
                if (_ram.Count == 0)
                {
                    _idle.TrySetResult();
                }
            }
            if (_flushingSlot == slot)
            {
                flushing = _flushingDone;
            }
        }
        if (flushing is not null)
        {
            await flushing.ConfigureAwait(false);
        }
        await _backing.FreeAsync(slot).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    protected override ValueTask<long> GrowToAsync(long bytes) => new(_backing.CapacityBytes);

    /// <inheritdoc/>
    public override ValueTask RestoreAsync(IReadOnlySet<long> used) => _backing.RestoreAsync(used);

    /// <inheritdoc/>
    public override uint Tier(long slot)
    {
        lock (_sync)
        {
            return _ram.ContainsKey(slot) ? CopyOrder.Ram : _backing.Tier(slot);
        }
    }

    /// <inheritdoc/>
    public override async ValueTask WriteAsync(long slot, int offset, ReadOnlyMemory<byte> data)
    {
        ThrowIfFlushFailed();
        lock (_sync)
        {
            if (_ram.TryGetValue(slot, out var held))
            {
                data.Span.CopyTo(held.Buffer.Span[offset..]);
                held.Version++;
                return;
            }
        }
        var whole = offset == 0 && data.Length == ChunkSize;
        PooledBuffer? buffer = null;
        lock (_sync)
        {
            if (_ram.Count < _maxRamChunks)
            {
                buffer = _spare.Count > 0 ? _spare.Pop() : _pool.Rent(ChunkSize);
                _ram[slot] = new RamChunk(buffer) { Loading = !whole };
                if (_ram.Count == 1)
                {
                    _idle = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                }
            }
        }
        if (buffer is null)
        {
            // RAM is full: this writer pays for the backing store.
            await _backing.WriteAsync(slot, offset, data).ConfigureAwait(false);
            return;
        }
        if (!whole)
        {
            // A partial write to a chunk that lives below: bring the rest of it up first.
            await _backing.ReadAsync(slot, 0, buffer.Memory).ConfigureAwait(false);
        }
        lock (_sync)
        {
            data.Span.CopyTo(buffer.Span[offset..]);
            var chunk = _ram[slot];
            chunk.Loading = false;
            chunk.Version++;
        }
        _queue.Writer.TryWrite(slot);
    }

    /// <inheritdoc/>
    public override ValueTask ReadAsync(long slot, int offset, Memory<byte> buffer)
    {
        lock (_sync)
        {
            if (_ram.TryGetValue(slot, out var held) && !held.Loading)
            {
                held.Buffer.Span.Slice(offset, buffer.Length).CopyTo(buffer.Span);
                return default;
            }
        }
        return _backing.ReadAsync(slot, offset, buffer);
    }

    /// <summary>Waits until every chunk is in the backing store, then flushes it.</summary>
    public override async ValueTask FlushAsync()
    {
        Task idle;
        lock (_sync)
        {
            idle = _idle.Task;
        }
        await idle.ConfigureAwait(false);
        ThrowIfFlushFailed();
        await _backing.FlushAsync().ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public override async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _queue.Writer.TryComplete();
        await _flusher.ConfigureAwait(false);
        lock (_sync)
        {
            foreach (var chunk in _ram.Values)
            {
                ((IDisposable)chunk.Buffer).Dispose();
            }
            _ram.Clear();
            while (_spare.TryPop(out var spare))
            {
                ((IDisposable)spare).Dispose();
            }
        }
        await _backing.DisposeAsync().ConfigureAwait(false);
        _stop.Dispose();
        await base.DisposeAsync().ConfigureAwait(false);
    }

    private async Task FlushLoopAsync()
    {
        using var scratch = _pool.Rent(ChunkSize);
        try
        {
            await foreach (var slot in _queue.Reader.ReadAllAsync(_stop.Token).ConfigureAwait(false))
            {
                await FlushOneAsync(slot, scratch).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // Disposed: what is still in RAM is dropped with the store.
        }
    }

    private async Task FlushOneAsync(long slot, PooledBuffer scratch)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            await FlushSlotAsync(slot, scratch, done.Task).ConfigureAwait(false);
        }
        finally
        {
            lock (_sync)
            {
                _flushingSlot = -1;
            }
            done.SetResult();
        }
    }

    private async Task FlushSlotAsync(long slot, PooledBuffer scratch, Task done)
    {
        while (true)
        {
            int version;
            RamChunk copied;
            lock (_sync)
            {
                if (!_ram.TryGetValue(slot, out var chunk))
                {
                    return;
                }
                chunk.Buffer.Span.CopyTo(scratch.Span);
                version = chunk.Version;
                copied = chunk;
                _flushingSlot = slot;
                _flushingDone = done;
            }
            try
            {
                await _backing.WriteAsync(slot, 0, scratch.Memory).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
                // Keep the chunk in RAM (reads still work) and fail later writes and flushes; a flush
                // waiting for the RAM to drain wakes up to report the error.
                lock (_sync)
                {
                    _flushError ??= e;
                    _idle.TrySetResult();
                }
                return;
            }
            lock (_sync)
            {
                if (!_ram.TryGetValue(slot, out var chunk) || !ReferenceEquals(chunk, copied))
                {
                    return; // freed while it was being written
                }
                if (chunk.Version != version)
                {
                    continue; // changed while it was being written: write it again
                }
                _ram.Remove(slot);
                _spare.Push(chunk.Buffer);
                if (_ram.Count == 0)
                {
                    _idle.TrySetResult();
                }
                return;
            }
        }
    }

    private void ThrowIfFlushFailed()
    {
        if (_flushError is { } e)
        {
            throw new Core.BlockException(Core.BlockError.Io, $"the disk tier of {Description} failed: {e.Message}", e);
        }
    }

    private static DiffStore Backing(DiffStore backing)
    {
        ArgumentNullException.ThrowIfNull(backing);
        return backing;
    }

    private sealed class RamChunk(PooledBuffer buffer)
    {
        public PooledBuffer Buffer { get; } = buffer;

        public int Version { get; set; }

        public bool Loading { get; set; }
    }
}
