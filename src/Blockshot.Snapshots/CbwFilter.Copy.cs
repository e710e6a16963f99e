using Blockshot.Core;
using Blockshot.Core.Buffers;
using Blockshot.Snapshots.Cbw;

namespace Blockshot.Snapshots;

/// <summary>The slow path: copying chunks before they change, and what happens when that fails.</summary>
public sealed partial class CbwFilter
{
    private static readonly TimeSpan SpacePoll = TimeSpan.FromMilliseconds(50);

    private async ValueTask CopyChunksAsync(long first, long last)
    {
        using var held = await _locks.AcquireAsync(ChunkOffset(first), (last - first + 1) << _chunkShift).ConfigureAwait(false);
        using var buffer = _pool.Rent(ChunkSize);
        for (var chunk = first; chunk <= last; chunk++)
        {
            if (!_covered.Get(chunk))
            {
                await CopyChunkAsync(chunk, buffer).ConfigureAwait(false);
            }
        }
    }

    // Caller holds the chunk's exclusive lock.
    private async ValueTask CopyChunkAsync(long chunk, PooledBuffer buffer)
    {
        var snapshots = _snapshots;
        if (!AnyNeeds(snapshots, chunk))
        {
            _covered.Set(chunk);
            return;
        }
        var data = buffer.Memory[..ChunkLength(chunk)];
        try
        {
            await Next.ReadAsync(ChunkOffset(chunk), data).ConfigureAwait(false);
        }
        catch (BlockException e)
        {
            CopyFailed(snapshots, chunk, BlockError.Io, $"reading chunk {chunk} from the origin failed: {e.Message}");
            return;
        }

        uint entry;
        long slot = -1;
        if (data.Span.IndexOfAnyExcept((byte)0) < 0)
        {
            entry = ChunkTable.Zero;
        }
        else
        {
            slot = await AllocateForAsync(snapshots, chunk).ConfigureAwait(false);
            if (slot < 0)
            {
                return; // the snapshots that needed it broke; the write goes on
            }
            try
            {
                await Store.WriteAsync(slot, 0, data).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
                await Store.FreeAsync(slot).ConfigureAwait(false);
                CopyFailed(snapshots, chunk, BlockError.Io, $"writing chunk {chunk} to difference storage failed: {e.Message}");
                return;
            }
            entry = ChunkTable.FromSlot(slot);
        }

        var assigned = 0;
        foreach (var s in snapshots)
        {
            if (s.IsActive && s.Table[chunk] == ChunkTable.None)
            {
                s.Table[chunk] = entry;
                s.CountCopy();
                assigned++;
            }
        }
        if (_log is not null && assigned > 0 && !await RecordEntriesAsync(snapshots, chunk, entry).ConfigureAwait(false))
        {
            CopyFailed(snapshots, chunk, BlockError.Io, $"recording the copy of chunk {chunk} durably failed: {_log.Problem}", requireNone: false);
        }
        if (slot >= 0)
        {
            if (assigned > 0)
            {
                AddRef(slot, assigned);
            }
            else
            {
                await Store.FreeAsync(slot).ConfigureAwait(false);
            }
        }
        _covered.Set(chunk);
    }

    private static bool AnyNeeds(Snapshot[] snapshots, long chunk)
    {
        foreach (var s in snapshots)
        {
            if (s.IsActive && s.Table[chunk] == ChunkTable.None)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>A slot for a chunk, applying the snapshots' overflow policies when the store is full.</summary>
    private async ValueTask<long> AllocateForAsync(Snapshot[] snapshots, long chunk)
    {
        var slot = await Store.AllocateAsync().ConfigureAwait(false);
        if (slot >= 0)
        {
            return slot;
        }
        var wait = TimeSpan.Zero;
        foreach (var s in snapshots)
        {
            if (s.IsActive && s.Options.OnOverflow == OverflowPolicy.Wait && s.Options.WaitTimeout > wait)
            {
                wait = s.Options.WaitTimeout;
            }
        }
        if (wait > TimeSpan.Zero)
        {
            var deadline = DateTime.UtcNow + wait;
            while (DateTime.UtcNow < deadline)
            {
                await Task.Delay(SpacePoll).ConfigureAwait(false);
                slot = await Store.AllocateAsync().ConfigureAwait(false);
                if (slot >= 0)
                {
                    return slot;
                }
            }
        }
        CopyFailed(snapshots, chunk, BlockError.NoSpace,
            $"difference storage is full ({Store.UsedBytes >> 20} MiB of {(Store.LimitBytes == long.MaxValue ? "unlimited" : (Store.LimitBytes >> 20) + " MiB")} used{(Store.GrowFailure is { } why ? "; growing it failed: " + why : "")})");
        return -1;
    }

    /// <summary>
    /// A chunk could not be protected. Snapshots whose policy keeps them valid make the write fail;
    /// otherwise the snapshots that needed the chunk break and the write proceeds.
    /// </summary>
    private void CopyFailed(Snapshot[] snapshots, long chunk, BlockError error, string reason, bool requireNone = true)
    {
        foreach (var s in snapshots)
        {
            if (s.IsActive && (!requireNone || s.Table[chunk] == ChunkTable.None) && Effective(s.Options) == OverflowPolicy.FailWrite)
            {
                throw new BlockException(error, $"{reason}; the write is refused to keep snapshot '{s.Name}' valid");
            }
        }
        foreach (var s in snapshots)
        {
            if (s.IsActive && (!requireNone || s.Table[chunk] == ChunkTable.None))
            {
                Fail(s, reason);
                // Its storage is released once the chunk locks held now are gone.
                _ = Task.Run(() => ReleaseFailedAsync(s));
            }
        }
    }

    private static OverflowPolicy Effective(SnapshotOptions options) =>
        options.OnOverflow == OverflowPolicy.Wait ? options.AfterWait : options.OnOverflow;

    private async Task ReleaseFailedAsync(Snapshot snapshot)
    {
        using (await _locks.AcquireAsync(0, Math.Max(1, ChunkCount << _chunkShift)).ConfigureAwait(false))
        {
            await ReleaseEntriesAsync(snapshot).ConfigureAwait(false);
        }
    }
}
