using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Blockshot.Nbd.Internal;

/// <summary>
/// Replies: written with blocking sends by whichever thread holds the send turn, coalescing small ones.
/// A request the reader served inline owes its reply until the reader is about to wait (for the client
/// or for a lane), and the reader then sends everything owed in one go: a busy connection costs no
/// wake-ups at all. A reply finished on any other thread wakes the connection's sender thread, so a
/// client slow to read holds that thread and never a shared one.
/// </summary>
internal sealed partial class NbdConnection
{
    private const int CoalesceSize = 64 << 10;
    private const int MaxBatch = 64;

    // Replies waiting to be written, and the send turn: 1 while a thread is writing.
    private readonly ConcurrentQueue<Lane> _replies = new();
    private int _sending;
    private readonly byte[] _coalesce = GC.AllocateUninitializedArray<byte>(CoalesceSize, pinned: true);
    private readonly List<Lane> _batch = new(MaxBatch);

    // The sender thread sleeps on _senderWake; _senderScheduled is 1 while a wake is pending.
    private readonly SemaphoreSlim _senderWake = new(0);
    private int _senderScheduled;
    private volatile bool _senderStopping;
    private Thread? _senderThread;

    // Set by the reader when a request it served inline queued a reply; cleared when it flushes.
    private bool _readerOwes;
    private volatile bool _broken;

    /// <summary>Queues a lane's reply; completes when it is written (false if the connection broke).</summary>
    public ValueTask<bool> SendAsync(Lane lane)
    {
        _replies.Enqueue(lane);
        if (Environment.CurrentManagedThreadId == _readerThreadId)
        {
            _readerOwes = true;
        }
        else
        {
            WakeSender();
        }
        return lane.Sent.WaitAsync();
    }

    /// <summary>On the reader's thread: writes the replies it owes before it waits for anything.</summary>
    private void FlushOwedReplies()
    {
        if (_readerOwes)
        {
            _readerOwes = false;
            DrainReplies();
        }
    }

    private void StartSender()
    {
        _senderThread = new Thread(SendLoop) { IsBackground = true, Name = $"nbd-send-{Id}" };
        _senderThread.Start();
    }

    private void WakeSender()
    {
        if (Interlocked.Exchange(ref _senderScheduled, 1) == 0)
        {
            _senderWake.Release();
        }
    }

    private void StopSender()
    {
        _senderStopping = true;
        WakeSender();
        _senderThread?.Join();
    }

    private void SendLoop()
    {
        while (true)
        {
            _senderWake.Wait();
            // A full fence before looking at the queue: a reply queued after this point wakes us again.
            Interlocked.Exchange(ref _senderScheduled, 0);
            DrainReplies();
            if (_senderStopping && _replies.IsEmpty)
            {
                return;
            }
        }
    }

    /// <summary>
    /// Writes queued replies until none is left, unless another thread holds the send turn: that thread
    /// looks at the queue again after giving the turn back, so nothing queued is left behind.
    /// </summary>
    private void DrainReplies()
    {
        while (!_replies.IsEmpty && Interlocked.CompareExchange(ref _sending, 1, 0) == 0)
        {
            try
            {
                while (true)
                {
                    while (_batch.Count < MaxBatch && _replies.TryDequeue(out var lane))
                    {
                        _batch.Add(lane);
                    }
                    if (_batch.Count == 0)
                    {
                        break;
                    }
                    WriteBatch();
                    var ok = !_broken;
                    foreach (var lane in _batch)
                    {
                        lane.Sent.Set(ok);
                    }
                    _batch.Clear();
                }
            }
            finally
            {
                // A full fence: the emptiness check above must not be read before the turn is given back.
                Interlocked.Exchange(ref _sending, 0);
            }
        }
    }

    private void WriteBatch()
    {
        var used = 0;
        foreach (var lane in _batch)
        {
            for (var i = 0; i < lane.SegmentCount; i++)
            {
                if (lane.Segments[i].Source == ReplySource.File)
                {
                    SendOrBreak(_coalesce.AsSpan(0, used));
                    used = 0;
                    SendFileOrBreak(lane);
                    continue;
                }
                var bytes = lane.Bytes(lane.Segments[i]).Span;
                var copy = bytes.Length <= _coalesce.Length / 2;
                // Whatever is gathered goes first: a segment sent on its own must not overtake it.
                if (used > 0 && (!copy || bytes.Length > _coalesce.Length - used))
                {
                    SendOrBreak(_coalesce.AsSpan(0, used));
                    used = 0;
                }
                if (copy)
                {
                    bytes.CopyTo(_coalesce.AsSpan(used));
                    used += bytes.Length;
                }
                else
                {
                    SendOrBreak(bytes);
                }
            }
        }
        SendOrBreak(_coalesce.AsSpan(0, used));
    }

    private void SendOrBreak(ReadOnlySpan<byte> bytes)
    {
        if (_broken || bytes.IsEmpty)
        {
            return;
        }
        try
        {
            SendAll(bytes);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The client is gone: later replies are dropped, and the reader will see the end.
            _broken = true;
            RequestStop();
        }
    }

    /// <summary>
    /// Sends the lane's cached file range. The header before it has promised that many bytes, so a file
    /// that turns out shorter (cut under the node since the range was mapped) is padded with zeros, which
    /// is what a read past its end gives. A failure of the file itself cannot be reported any more: the
    /// connection is ended rather than let the client take wrong data.
    /// </summary>
    private void SendFileOrBreak(Lane lane)
    {
        if (_broken)
        {
            return;
        }
        var range = lane.File;
        var outcome = FileSend.Send(_socket, range.File, range.FileOffset, range.Length, out var sent, out var errno);
        switch (outcome)
        {
            case FileSend.Outcome.Sent:
                return;
            case FileSend.Outcome.FileEnded:
                for (var left = range.Length - sent; left > 0 && !_broken;)
                {
                    var piece = (int)Math.Min(left, ZeroPadding.Length);
                    SendOrBreak(ZeroPadding.AsSpan(0, piece));
                    left -= piece;
                }
                return;
            default:
                if (!FileSend.ClientGone(errno))
                {
                    NbdLog.ZeroCopySendFailed(_logger, Id, range.FileOffset, range.Length, Marshal.GetPInvokeErrorMessage(errno));
                }
                _broken = true;
                RequestStop();
                return;
        }
    }

    private static readonly byte[] ZeroPadding = new byte[64 << 10];

    /// <summary>A blocking send of every byte.</summary>
    private void SendAll(ReadOnlySpan<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            bytes = bytes[_socket.Send(bytes, SocketFlags.None)..];
        }
    }
}
