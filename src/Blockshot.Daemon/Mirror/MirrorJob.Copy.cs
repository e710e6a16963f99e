using System.Threading.Channels;
using Blockshot.Core;
using Blockshot.Core.Buffers;
using Blockshot.Core.Extents;

namespace Blockshot.Daemon.Mirror;

/// <summary>The copier: ranges produced by a pass or a sweep, copied by a few workers at once.</summary>
internal sealed partial class MirrorJob
{
    // Bytes of source extents asked for at a time in the first pass.
    private const long ExtentWindow = 1L << 30;

    private readonly record struct CopyItem(long Offset, int Length, bool Zero);

    private async Task CopyAsync(IAsyncEnumerable<CopyItem> items, bool firstPass, bool paced, CancellationToken cancellationToken)
    {
        var queue = Channel.CreateBounded<CopyItem>(new BoundedChannelOptions(_options.Parallel * 2) { SingleWriter = true });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var workers = new Task[_options.Parallel];
        for (var i = 0; i < workers.Length; i++)
        {
            workers[i] = Task.Run(async () =>
            {
                try
                {
                    await WorkAsync(queue.Reader, firstPass, paced, stop.Token).ConfigureAwait(false);
                }
                catch
                {
                    // One failed copy ends the pass: stop the producer and the other workers.
                    await stop.CancelAsync().ConfigureAwait(false);
                    throw;
                }
            }, CancellationToken.None);
        }
        Exception? producerFailure = null;
        try
        {
            await foreach (var item in items.WithCancellation(stop.Token).ConfigureAwait(false))
            {
                await queue.Writer.WriteAsync(item, stop.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e)
        {
            producerFailure = e;
            await stop.CancelAsync().ConfigureAwait(false);
        }
        queue.Writer.TryComplete();
        try
        {
            await Task.WhenAll(workers).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Report the real failure, not the cancellations it caused.
        }
        var failure = workers.Where(w => w.IsFaulted).Select(w => w.Exception!.InnerException!).FirstOrDefault(e => e is not OperationCanceledException)
            ?? (producerFailure is not OperationCanceledException ? producerFailure : null);
        if (failure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure).Throw();
        }
        cancellationToken.ThrowIfCancellationRequested();
        if (producerFailure is not null || workers.Any(w => !w.IsCompletedSuccessfully))
        {
            throw new OperationCanceledException("the copy stopped", producerFailure);
        }
    }

    private async Task WorkAsync(ChannelReader<CopyItem> queue, bool firstPass, bool paced, CancellationToken cancellationToken)
    {
        var leaf = _device.Leaf;
        var target = _target.Node;
        using var buffer = BufferPool.Shared.Rent(_options.ChunkSize);
        await foreach (var item in queue.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            if (paced && !item.Zero)
            {
                await CheckpointAsync(item.Length, cancellationToken).ConfigureAwait(false);
            }
            // The first pass runs before writes are mirrored; later copies hold the chunk against them.
            var held = firstPass ? default : await _state.Locks.AcquireAsync(item.Offset, item.Length).ConfigureAwait(false);
            try
            {
                if (item.Zero)
                {
                    await target.WriteZeroesAsync(item.Offset, item.Length, IoFlags.MayTrim).ConfigureAwait(false);
                }
                else
                {
                    var data = buffer.Memory[..item.Length];
                    await leaf.ReadAsync(item.Offset, data).ConfigureAwait(false);
                    if (data.Span.IndexOfAnyExcept((byte)0) >= 0)
                    {
                        await target.WriteAsync(item.Offset, data, IoFlags.None).ConfigureAwait(false);
                        Interlocked.Add(ref _copied, item.Length);
                    }
                    else if (firstPass && _target.KnownZero)
                    {
                        Interlocked.Add(ref _skipped, item.Length);
                    }
                    else
                    {
                        await target.WriteZeroesAsync(item.Offset, item.Length, IoFlags.MayTrim).ConfigureAwait(false);
                    }
                }
            }
            finally
            {
                held.Dispose();
            }
            AddDone(item.Length);
        }
    }

    // The first pass: allocated extents in chunks; holes are skipped on a fresh target and zeroed otherwise.
    private async IAsyncEnumerable<CopyItem> FirstPassAsync(long size, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var leaf = _device.Leaf;
        var extents = new ExtentList();
        var chunk = _options.ChunkSize;
        for (long window = 0; window < size; window += ExtentWindow)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var length = Math.Min(ExtentWindow, size - window);
            var pos = window;
            while (pos < window + length)
            {
                extents.Reset(pos, window + length - pos);
                await leaf.GetExtentsAsync(pos, window + length - pos, extents).ConfigureAwait(false);
                if (extents.Count == 0)
                {
                    extents.Add(window + length - pos, AllocationFlags.Data);
                }
                foreach (var extent in extents.Items.ToArray())
                {
                    var zero = (extent.Flags & AllocationFlags.Zero) != 0;
                    if (zero && _target.KnownZero)
                    {
                        Interlocked.Add(ref _skipped, extent.Length);
                        AddDone(extent.Length);
                        continue;
                    }
                    for (var at = extent.Offset; at < extent.Offset + extent.Length; at += chunk)
                    {
                        yield return new CopyItem(at, (int)Math.Min(chunk, extent.Offset + extent.Length - at), zero);
                    }
                }
                pos = extents.End;
            }
        }
    }

    // One sweep over the dirty map: each run of dirty chunks is taken (cleared) as it is handed out.
    private async IAsyncEnumerable<CopyItem> DirtyRanges()
    {
        var granularity = _state.Dirty.Granularity;
        var maxChunks = Math.Max(1, _options.ChunkSize / granularity);
        long cursor = 0;
        var size = _state.Dirty.Size;
        while (_state.Dirty.TakeNext(ref cursor, maxChunks, out var first, out var count))
        {
            var offset = first * granularity;
            var length = (int)Math.Min((long)count * granularity, size - offset);
            yield return new CopyItem(offset, length, Zero: false);
        }
        await Task.CompletedTask.ConfigureAwait(false);
    }
}
