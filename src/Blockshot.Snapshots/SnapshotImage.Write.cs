using System.Runtime.CompilerServices;
using Blockshot.Core;
using Blockshot.Core.Extents;
using Blockshot.Snapshots.Cbw;

namespace Blockshot.Snapshots;

/// <summary>Writes, zeroes and discards on a snapshot image, and its block status.</summary>
public sealed partial class SnapshotImage
{
    /// <inheritdoc/>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public override async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, IoFlags flags)
    {
        ThrowIfUnwritable();
        var (start, length) = ChunkRange(offset, data.Length);
        using (await _filter.Locks.AcquireAsync(start, length).ConfigureAwait(false))
        {
            ThrowIfUnreadable();
            while (!data.IsEmpty)
            {
                var chunk = _filter.ChunkOf(offset);
                var inChunk = (int)(offset - _filter.ChunkOffset(chunk));
                var n = Math.Min(data.Length, _filter.ChunkSize - inChunk);
                await WriteChunkAsync(chunk, inChunk, data[..n]).ConfigureAwait(false);
                data = data[n..];
                offset += n;
            }
        }
        if ((flags & IoFlags.Fua) != 0)
        {
            await _filter.Store.FlushAsync().ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    public override async ValueTask WriteZeroesAsync(long offset, long length, IoFlags flags)
    {
        ThrowIfUnwritable();
        var (start, span) = ChunkRange(offset, length);
        using (await _filter.Locks.AcquireAsync(start, span).ConfigureAwait(false))
        {
            ThrowIfUnreadable();
            var end = offset + length;
            while (offset < end)
            {
                var chunk = _filter.ChunkOf(offset);
                var inChunk = (int)(offset - _filter.ChunkOffset(chunk));
                var n = (int)Math.Min(end - offset, _filter.ChunkSize - inChunk);
                if (inChunk == 0 && n == _filter.ChunkLength(chunk))
                {
                    await SetEntryAsync(chunk, ChunkTable.Zero).ConfigureAwait(false);
                }
                else
                {
                    await WriteChunkAsync(chunk, inChunk, ZeroBuffer[..n]).ConfigureAwait(false);
                }
                offset += n;
            }
        }
    }

    /// <summary>
    /// Frees the whole chunks inside the range (partial chunks are left). On a read-only image this is
    /// read-once access: the chunks are discarded, the origin's old data is no longer kept for this
    /// snapshot, and reading them later fails. On a writable image the chunks read as zeros afterwards,
    /// as a trimmed device's may.
    /// </summary>
    public override async ValueTask TrimAsync(long offset, long length, IoFlags flags)
    {
        var first = _filter.ChunkOf(offset + _filter.ChunkSize - 1);
        var endChunk = _filter.ChunkOf(offset + length);
        if (offset + length == Size)
        {
            endChunk = _filter.ChunkCount; // a partial last chunk of the device counts as whole
        }
        if (first >= endChunk)
        {
            return;
        }
        using (await _filter.Locks.AcquireAsync(_filter.ChunkOffset(first), _filter.ChunkOffset(endChunk - first)).ConfigureAwait(false))
        {
            for (var chunk = first; chunk < endChunk; chunk++)
            {
                await SetEntryAsync(chunk, _snapshot.Options.Writable ? ChunkTable.Zero : ChunkTable.Discarded).ConfigureAwait(false);
            }
        }
    }

    /// <inheritdoc/>
    public override ValueTask FlushAsync() => _snapshot.Options.Writable ? _filter.Store.FlushAsync() : default;

    /// <inheritdoc/>
    public override async ValueTask GetExtentsAsync(long offset, long length, ExtentList extents)
    {
        ThrowIfUnreadable();
        var (start, span) = ChunkRange(offset, length);
        using (await _filter.Locks.AcquireAsync(start, span, shared: true).ConfigureAwait(false))
        {
            var table = _snapshot.Table;
            var end = offset + length;
            while (offset < end && !extents.IsFull)
            {
                var chunk = _filter.ChunkOf(offset);
                var n = Math.Min(end - offset, _filter.ChunkOffset(chunk + 1) - offset);
                var entry = table[chunk];
                if (entry == ChunkTable.None)
                {
                    while (offset + n < end && table[_filter.ChunkOf(offset + n)] == ChunkTable.None)
                    {
                        n = Math.Min(end - offset, n + _filter.ChunkSize);
                    }
                    var runEnd = offset + n;
                    while (extents.End < runEnd && !extents.IsFull)
                    {
                        var before = extents.End;
                        await _filter.Next.GetExtentsAsync(before, runEnd - before, extents).ConfigureAwait(false);
                        if (extents.End == before)
                        {
                            extents.AddUntil(runEnd, AllocationFlags.Data);
                        }
                    }
                }
                else
                {
                    extents.Add(n, ChunkTable.IsSlot(entry) ? AllocationFlags.Data : AllocationFlags.HoleZero);
                }
                offset += n;
            }
        }
    }

    // Caller holds the chunk's exclusive lock.
    private async ValueTask WriteChunkAsync(long chunk, int inChunk, ReadOnlyMemory<byte> piece)
    {
        var entry = _snapshot.Table[chunk];
        if (ChunkTable.IsSlot(entry) && _filter.RefCount(ChunkTable.ToSlot(entry)) == 1)
        {
            // Only this snapshot uses the slot: change it in place.
            await _filter.Store.WriteAsync(ChunkTable.ToSlot(entry), inChunk, piece).ConfigureAwait(false);
            return;
        }
        var slot = await _filter.Store.AllocateAsync().ConfigureAwait(false);
        if (slot < 0)
        {
            throw new BlockException(BlockError.NoSpace, $"difference storage is full; a write to snapshot '{_snapshot.Name}' was refused");
        }
        var length = _filter.ChunkLength(chunk);
        try
        {
            if (inChunk == 0 && piece.Length == length)
            {
                await _filter.Store.WriteAsync(slot, 0, piece).ConfigureAwait(false);
            }
            else
            {
                using var buffer = _filter.Pool.Rent(length);
                await ReadEntryAsync(chunk, entry, buffer.Memory).ConfigureAwait(false);
                piece.Span.CopyTo(buffer.Span[inChunk..]);
                await _filter.Store.WriteAsync(slot, 0, buffer.Memory).ConfigureAwait(false);
            }
        }
        catch
        {
            await _filter.Store.FreeAsync(slot).ConfigureAwait(false);
            throw;
        }
        _filter.AddRef(slot, 1);
        await SetEntryAsync(chunk, ChunkTable.FromSlot(slot)).ConfigureAwait(false);
    }

    // The chunk's current content for this snapshot (a discarded chunk counts as zeros).
    private ValueTask ReadEntryAsync(long chunk, uint entry, Memory<byte> buffer)
    {
        switch (entry)
        {
            case ChunkTable.None:
                return _filter.Next.ReadAsync(_filter.ChunkOffset(chunk), buffer);
            case ChunkTable.Zero:
            case ChunkTable.Discarded:
                buffer.Span.Clear();
                return default;
            default:
                return _filter.Store.ReadAsync(ChunkTable.ToSlot(entry), 0, buffer);
        }
    }

    // Caller holds the chunk's exclusive lock. Releases the slot the old entry named.
    private async ValueTask SetEntryAsync(long chunk, uint entry)
    {
        var old = _snapshot.Table[chunk];
        _snapshot.Table[chunk] = entry;
        await _filter.RecordEntryAsync(_snapshot, chunk, entry).ConfigureAwait(false);
        if (ChunkTable.IsSlot(old))
        {
            await _filter.ReleaseSlotAsync(ChunkTable.ToSlot(old)).ConfigureAwait(false);
        }
    }

    private void ThrowIfUnwritable()
    {
        if (!_snapshot.Options.Writable)
        {
            throw new BlockException(BlockError.ReadOnly, $"snapshot '{_snapshot.Name}' is read-only");
        }
        ThrowIfUnreadable();
    }
}
