using System.Threading.Channels;
using Blockshot.Core;
using Blockshot.Core.Buffers;
using Blockshot.Core.Extents;
using Blockshot.Drivers;
using Blockshot.Qcow2;

namespace Blockshot.Cli.Commands.Image;

/// <summary>
/// Copies a source node into a target node with several requests in flight. The source's extents are
/// walked first: zero runs are skipped when the target already reads as zeros (a new image) and zeroed
/// otherwise, and inside data, runs of at least <see cref="ConvertSettings.MinSparse"/> zero bytes are
/// treated the same way, as the reference tool does. Data the source stores verbatim in a file goes to
/// the target by a copy inside the kernel when the target can take it so (copy offload); with
/// compression, every cluster holding data goes to <see cref="Qcow2Node.WriteCompressedAsync"/>.
/// </summary>
internal sealed class Converter(BlockNode source, BlockNode target, ConvertSettings settings, ProgressLine? progress)
{
    /// <summary>One piece of work: a data range to copy or a zero range to zero.</summary>
    private readonly record struct Work(long Offset, long Length, bool Zero);

    private const long MaxZeroRequest = 1L << 30;

    private readonly Qcow2Node? _compressed = settings.Compress ? (Qcow2Node)target : null;

    // Data goes file to file while both ends allow it (cleared the first time the target refuses).
    private volatile bool _offload = settings.CopyOffload && !settings.Compress;

    // One in-kernel copy at a time: copies into one file queue on its inode lock in the kernel, where the
    // waiting ones spin (rwsem_spin_on_owner was 12% of a profile with eight at once) on the CPU the
    // copying one needs.
    private readonly SemaphoreSlim _copyTurn = new(1, 1);

    /// <summary>Bytes copied as data (for tests and reports).</summary>
    public long DataBytes => Interlocked.Read(ref _dataBytes);

    private long _dataBytes;

    /// <summary>Runs the copy; the first failure stops it and is rethrown.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var channel = Channel.CreateBounded<Work>(new BoundedChannelOptions(settings.Parallel * 2)
        {
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        var workers = new Task[settings.Parallel + 1];
        workers[0] = Task.Run(async () =>
        {
            try
            {
                await ProduceAsync(channel.Writer, cts.Token).ConfigureAwait(false);
                channel.Writer.TryComplete();
            }
            catch (Exception e)
            {
                channel.Writer.TryComplete(e);
                await cts.CancelAsync().ConfigureAwait(false);
                throw;
            }
        }, CancellationToken.None);
        for (var i = 1; i < workers.Length; i++)
        {
            workers[i] = Task.Run(async () =>
            {
                try
                {
                    await ConsumeAsync(channel.Reader, cts.Token).ConfigureAwait(false);
                }
                catch
                {
                    await cts.CancelAsync().ConfigureAwait(false);
                    throw;
                }
            }, CancellationToken.None);
        }
        try
        {
            await Task.WhenAll(workers).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // A worker failed and cancelled the others: report the real failure, not the cancellation.
            foreach (var w in workers)
            {
                if (w.IsFaulted && w.Exception!.InnerException is not OperationCanceledException)
                {
                    throw w.Exception.InnerException!;
                }
            }
            throw;
        }
        if (settings.Flush)
        {
            await target.FlushAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Walks the source's allocation and queues the work.</summary>
    private async Task ProduceAsync(ChannelWriter<Work> writer, CancellationToken ct)
    {
        var size = source.Size;
        var unit = _compressed?.ClusterSize ?? 1;
        var extents = new ExtentList();
        long queued = 0; // everything before this offset is queued
        var pos = 0L;
        while (pos < size)
        {
            extents.Reset(pos, size - pos);
            if (settings.UseExtents)
            {
                await source.GetExtentsAsync(pos, size - pos, extents).ConfigureAwait(false);
            }
            if (extents.End <= pos)
            {
                extents.Reset(pos, size - pos);
                extents.Add(size - pos, AllocationFlags.Data);
            }
            for (var i = 0; i < extents.Count; i++)
            {
                var e = extents[i];
                var start = Math.Max(e.Offset, queued);
                var end = Math.Min(e.End, size);
                if (start >= end)
                {
                    continue;
                }
                if ((e.Flags & AllocationFlags.Zero) != 0)
                {
                    // With compression only whole clusters are zero runs; partial ones go with the data.
                    var zeroStart = Align.Up(start, unit);
                    var zeroEnd = end == size ? end : Align.Down(end, unit);
                    if (zeroStart >= zeroEnd)
                    {
                        continue;
                    }
                    if (settings.TargetIsZero)
                    {
                        progress?.Add(zeroEnd - zeroStart);
                    }
                    else
                    {
                        for (var p = zeroStart; p < zeroEnd; p += MaxZeroRequest)
                        {
                            await writer.WriteAsync(new Work(p, Math.Min(MaxZeroRequest, zeroEnd - p), true), ct).ConfigureAwait(false);
                        }
                    }
                    queued = zeroEnd;
                    continue;
                }
                // Data: whole clusters when compressing; pieces that do not cross a chunk boundary.
                start = Math.Max(Align.Down(start, unit), queued);
                end = Math.Min(Align.Up(end, unit), size);
                for (var p = start; p < end;)
                {
                    var next = Math.Min(end, Align.Down(p, settings.ChunkBytes) + settings.ChunkBytes);
                    await writer.WriteAsync(new Work(p, next - p, false), ct).ConfigureAwait(false);
                    p = next;
                }
                queued = end;
            }
            pos = Math.Max(extents.End, queued);
        }
    }

    private async Task ConsumeAsync(ChannelReader<Work> reader, CancellationToken ct)
    {
        while (await reader.WaitToReadAsync(ct).ConfigureAwait(false))
        {
            while (reader.TryRead(out var work))
            {
                ct.ThrowIfCancellationRequested();
                if (work.Zero)
                {
                    await target.WriteZeroesAsync(work.Offset, work.Length, IoFlags.MayTrim).ConfigureAwait(false);
                }
                else
                {
                    await CopyAsync(work.Offset, (int)work.Length).ConfigureAwait(false);
                }
                progress?.Add(work.Length);
            }
        }
    }

    /// <summary>
    /// Copies a data piece: where the source's bytes lie verbatim in a file and the target can take them
    /// from there, inside the kernel (<see cref="BlockNode.TryWriteFromFileAsync"/>); the rest through a
    /// buffer.
    /// </summary>
    private async Task CopyAsync(long offset, int length)
    {
        var end = offset + length;
        var pos = offset;
        while (_offload && pos < end)
        {
            var map = await source.MapFileDataAsync(pos, (int)(end - pos)).ConfigureAwait(false);
            if (!map.IsMapped || !await CopyMappedAsync(pos, map).ConfigureAwait(false))
            {
                break;
            }
            pos += map.Length;
        }
        if (pos < end)
        {
            await CopyBufferedAsync(pos, (int)(end - pos)).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Copies a mapped run file to file, leaving out zero blocks as the buffered copy does (they are found
    /// in a read-only view of the source's page cache, not read into a buffer). False, with nothing
    /// written, when the run cannot be viewed, or (with no zero detection) the target refuses it; with zero
    /// detection, a target that refuses gets the rest of the run through a buffer.
    /// </summary>
    private async Task<bool> CopyMappedAsync(long offset, FileDataRange map)
    {
        if (settings.MinSparse <= 0)
        {
            return await TryWriteFromFileAsync(offset, map).ConfigureAwait(false);
        }
        using var view = FileView.TryMap(map.File!, map.FileOffset, map.Length);
        if (view is null)
        {
            return false;
        }
        var pos = 0;
        while (pos < map.Length)
        {
            var n = NextRun(view.Span, pos, offset, settings.MinSparse, out var zero);
            if (zero)
            {
                if (!settings.TargetIsZero)
                {
                    await target.WriteZeroesAsync(offset + pos, n, IoFlags.MayTrim).ConfigureAwait(false);
                }
            }
            else if (!await TryWriteFromFileAsync(offset + pos, map.Slice(pos, n)).ConfigureAwait(false))
            {
                await CopyBufferedAsync(offset + pos, map.Length - pos).ConfigureAwait(false);
                return true;
            }
            pos += n;
        }
        return true;
    }

    private async Task<bool> TryWriteFromFileAsync(long offset, FileDataRange run)
    {
        bool written;
        await _copyTurn.WaitAsync().ConfigureAwait(false);
        try
        {
            written = _offload && await target.TryWriteFromFileAsync(offset, run, IoFlags.None).ConfigureAwait(false);
        }
        finally
        {
            _copyTurn.Release();
        }
        if (!written)
        {
            _offload = false; // the target cannot take data from a file: never ask again
            return false;
        }
        Interlocked.Add(ref _dataBytes, run.Length);
        return true;
    }

    private async Task CopyBufferedAsync(long offset, int length)
    {
        using var buffer = BufferPool.Shared.Rent(length);
        var data = buffer.Memory[..length];
        await source.ReadAsync(offset, data).ConfigureAwait(false);
        if (_compressed is { } q)
        {
            await WriteCompressedAsync(q, offset, data).ConfigureAwait(false);
            return;
        }
        if (settings.MinSparse <= 0)
        {
            await WriteDataAsync(offset, data).ConfigureAwait(false);
            return;
        }
        // Runs of whole MinSparse-sized blocks of zeros are skipped (or zeroed); the rest is written.
        var pos = 0;
        while (pos < length)
        {
            var n = NextRun(data.Span, pos, offset, settings.MinSparse, out var zero);
            if (zero)
            {
                if (!settings.TargetIsZero)
                {
                    await target.WriteZeroesAsync(offset + pos, n, IoFlags.MayTrim).ConfigureAwait(false);
                }
            }
            else
            {
                await WriteDataAsync(offset + pos, data.Slice(pos, n)).ConfigureAwait(false);
            }
            pos += n;
        }
    }

    /// <summary>
    /// The run starting at <paramref name="pos"/>: whole <paramref name="block"/>-sized blocks (aligned to
    /// the guest offset <paramref name="baseOffset"/> + pos) of zeros, or data up to the next zero block.
    /// </summary>
    private static int NextRun(ReadOnlySpan<byte> data, int pos, long baseOffset, int block, out bool zero)
    {
        var zeroRun = ZeroRun(data, pos, baseOffset, block);
        zero = zeroRun > 0;
        if (zero)
        {
            return zeroRun;
        }
        var dataEnd = pos;
        while (dataEnd < data.Length && ZeroRun(data, dataEnd, baseOffset, block) == 0)
        {
            dataEnd = (int)Math.Min(data.Length, Align.Down(baseOffset + dataEnd, block) + block - baseOffset);
        }
        return dataEnd - pos;
    }

    /// <summary>Length of the run of zero blocks starting at <paramref name="pos"/> (0 when its block holds data).</summary>
    private static int ZeroRun(ReadOnlySpan<byte> data, int pos, long baseOffset, int block)
    {
        var p = pos;
        while (p < data.Length)
        {
            var blockEnd = (int)Math.Min(data.Length, Align.Down(baseOffset + p, block) + block - baseOffset);
            if (data[p..blockEnd].ContainsAnyExcept((byte)0))
            {
                break;
            }
            p = blockEnd;
        }
        return p - pos;
    }

    private async Task WriteDataAsync(long offset, ReadOnlyMemory<byte> data)
    {
        await target.WriteAsync(offset, data, IoFlags.None).ConfigureAwait(false);
        Interlocked.Add(ref _dataBytes, data.Length);
    }

    private async Task WriteCompressedAsync(Qcow2Node q, long offset, ReadOnlyMemory<byte> data)
    {
        var cluster = q.ClusterSize;
        for (var p = 0; p < data.Length; p += cluster)
        {
            var piece = data.Slice(p, Math.Min(cluster, data.Length - p));
            if (!piece.Span.ContainsAnyExcept((byte)0))
            {
                if (!settings.TargetIsZero)
                {
                    await target.WriteZeroesAsync(offset + p, piece.Length, IoFlags.MayTrim).ConfigureAwait(false);
                }
                continue;
            }
            await q.WriteCompressedAsync(offset + p, piece).ConfigureAwait(false);
            Interlocked.Add(ref _dataBytes, piece.Length);
        }
    }
}
