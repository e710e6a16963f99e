using System.Net.Sockets;

namespace Blockshot.Nbd.Internal;

/// <summary>The sender: one loop that writes replies as lanes finish, coalescing small ones.</summary>
internal sealed partial class NbdConnection
{
    private const int CoalesceSize = 64 << 10;
    private const int MaxBatch = 64;

    /// <summary>Queues a lane's reply; completes when it is written (false if the connection broke).</summary>
    public ValueTask<bool> SendAsync(Lane lane)
    {
        _replies.Enqueue(lane);
        WakeSender();
        return lane.Sent.WaitAsync();
    }

    private void WakeSender()
    {
        if (Interlocked.Exchange(ref _senderScheduled, 1) == 0)
        {
            _senderWake.Set(true);
        }
    }

    private void StopSender()
    {
        _senderStopping = true;
        WakeSender();
    }

    private async Task SendLoopAsync()
    {
        var coalesce = GC.AllocateUninitializedArray<byte>(CoalesceSize, pinned: true);
        var batch = new List<Lane>(MaxBatch);
        while (true)
        {
            await _senderWake.WaitAsync().ConfigureAwait(false);
            while (true)
            {
                while (batch.Count < MaxBatch && _replies.TryDequeue(out var lane))
                {
                    batch.Add(lane);
                }
                if (batch.Count == 0)
                {
                    // A full fence, not a release write: the emptiness check below must not be read before
                    // this store is visible, or a producer that saw the flag still set would not wake us,
                    // and its reply would wait forever.
                    Interlocked.Exchange(ref _senderScheduled, 0);
                    if (!_replies.IsEmpty && Interlocked.Exchange(ref _senderScheduled, 1) == 0)
                    {
                        continue;
                    }
                    break;
                }
                await WriteBatchAsync(batch, coalesce).ConfigureAwait(false);
                var ok = !_broken;
                foreach (var lane in batch)
                {
                    lane.Sent.Set(ok);
                }
                batch.Clear();
            }
            if (_senderStopping && _replies.IsEmpty)
            {
                return;
            }
        }
    }

    private async ValueTask WriteBatchAsync(List<Lane> batch, byte[] coalesce)
    {
        var used = 0;
        foreach (var lane in batch)
        {
            for (var i = 0; i < lane.SegmentCount; i++)
            {
                var bytes = lane.Bytes(lane.Segments[i]);
                var copy = bytes.Length <= coalesce.Length / 2;
                // Whatever is gathered goes first: a segment sent on its own must not overtake it.
                if (used > 0 && (!copy || bytes.Length > coalesce.Length - used))
                {
                    await SendAllAsync(coalesce.AsMemory(0, used)).ConfigureAwait(false);
                    used = 0;
                }
                if (copy)
                {
                    bytes.Span.CopyTo(coalesce.AsSpan(used));
                    used += bytes.Length;
                }
                else
                {
                    await SendAllAsync(bytes).ConfigureAwait(false);
                }
            }
        }
        await SendAllAsync(coalesce.AsMemory(0, used)).ConfigureAwait(false);
    }

    private async ValueTask SendAllAsync(ReadOnlyMemory<byte> bytes)
    {
        try
        {
            while (!bytes.IsEmpty && !_broken)
            {
                var n = await _socket.SendAsync(bytes, SocketFlags.None).ConfigureAwait(false);
                bytes = bytes[n..];
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The client is gone: later replies are dropped, and the reader will see the end.
            _broken = true;
            RequestStop();
        }
    }
}
