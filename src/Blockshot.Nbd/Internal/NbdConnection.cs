using System.Collections.Concurrent;
using System.Net.Sockets;
using Blockshot.Core.Buffers;
using Microsoft.Extensions.Logging;

namespace Blockshot.Nbd.Internal;

/// <summary>
/// One client connection: the handshake, then a reader that parses requests and hands each to a
/// lane, lanes that run requests concurrently, and one sender that writes replies in the order they
/// finish (coalescing small ones). Partial files split it by concern.
/// </summary>
internal sealed partial class NbdConnection
{
    private readonly NbdServer _server;
    private readonly Socket _socket;
    private readonly SocketReader _reader;
    private readonly NbdServerOptions _options;
    private readonly BufferPool _pool;
    private readonly ILogger _logger;

    // Lanes. _free, _laneCount, _bytesInFlight and _readerWaiting are guarded by _laneLock.
    private readonly object _laneLock = new();
    private readonly Stack<Lane> _free = new();
    private readonly List<Task> _laneLoops = [];
    private int _laneCount;
    private long _bytesInFlight;
    private bool _readerWaiting;
    private readonly ReusableSignal _laneFreed = new(runContinuationsAsynchronously: true);

    // Requests handed to lanes and not yet returned; _readerDone is set once the reader stops.
    private int _active;
    private volatile bool _readerDone;
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Replies waiting for the sender.
    private readonly ConcurrentQueue<Lane> _replies = new();
    private int _senderScheduled;
    private readonly ReusableSignal _senderWake = new(runContinuationsAsynchronously: true);
    private volatile bool _broken;
    private volatile bool _senderStopping;

    public NbdConnection(NbdServer server, Socket socket, long id, string remote, NbdServerOptions options, ILogger logger)
    {
        _server = server;
        _socket = socket;
        Id = id;
        Remote = remote;
        _options = options;
        _pool = options.Buffers;
        _logger = logger;
        _reader = new SocketReader(socket);
    }

    public long Id { get; }

    /// <summary>The socket's send buffer as the kernel reports it (doubled for its bookkeeping).</summary>
    public int SendBufferBytes => _socket.SendBufferSize;

    public string Remote { get; }

    /// <summary>The export chosen in the handshake, once chosen.</summary>
    public NbdExport? Export { get; private set; }

    /// <summary>Runs the connection to its end; never throws.</summary>
    public async Task RunAsync()
    {
        var reason = "client disconnected";
        Task? sender = null;
        try
        {
            if (!await HandshakeAsync().ConfigureAwait(false))
            {
                reason = "handshake ended";
                return;
            }
            _server.OnAttached(this);
            sender = SendLoopAsync();
            reason = await ReadLoopAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or EndOfStreamException or IOException or OperationCanceledException or ObjectDisposedException)
        {
            reason = e.Message;
        }
        finally
        {
            if (sender is not null)
            {
                // Requests already read finish and are answered (if the socket still works).
                await DrainAsync().ConfigureAwait(false);
                StopSender();
                await sender.ConfigureAwait(false);
            }
            await StopLanesAsync().ConfigureAwait(false);
            try
            {
                _socket.Shutdown(SocketShutdown.Both);
            }
            catch (SocketException)
            {
                // Already gone: nothing to flush.
            }
            _socket.Dispose();
            NbdLog.Closed(_logger, Id, reason);
            _server.OnClosed(this);
        }
    }

    /// <summary>Stops reading new requests; those in flight finish and are answered.</summary>
    public void RequestStop()
    {
        try
        {
            _socket.Shutdown(SocketShutdown.Receive);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The connection is already closing.
        }
    }

    /// <summary>
    /// Takes a free lane for a request carrying or asking for <paramref name="payloadBytes"/>, making
    /// one if under the limit; waits while no lane is free or the payload budget is spent.
    /// </summary>
    private async ValueTask<Lane> AcquireLaneAsync(long payloadBytes)
    {
        while (true)
        {
            lock (_laneLock)
            {
                var withinBudget = _bytesInFlight == 0 || _bytesInFlight + payloadBytes <= _options.MaxBytesInFlightPerConnection;
                if (withinBudget && (_free.Count > 0 || _laneCount < _options.MaxInFlightPerConnection))
                {
                    Lane lane;
                    if (_free.Count > 0)
                    {
                        lane = _free.Pop();
                    }
                    else
                    {
                        _laneCount++;
                        lane = new Lane(this);
                        _laneLoops.Add(lane.RunAsync());
                    }
                    lane.ReservedBytes = payloadBytes;
                    _bytesInFlight += payloadBytes;
                    return lane;
                }
                _readerWaiting = true;
            }
            await _laneFreed.WaitAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Called by a lane when its reply is sent.</summary>
    public void ReturnLane(Lane lane)
    {
        var wake = false;
        lock (_laneLock)
        {
            _bytesInFlight -= lane.ReservedBytes;
            lane.ReservedBytes = 0;
            _free.Push(lane);
            if (_readerWaiting)
            {
                _readerWaiting = false;
                wake = true;
            }
        }
        if (wake)
        {
            _laneFreed.Set(true);
        }
        if (Interlocked.Decrement(ref _active) == 0 && _readerDone)
        {
            _drained.TrySetResult();
        }
    }

    /// <summary>Puts back a lane that was taken but never given its request.</summary>
    private void AbandonLane(Lane lane)
    {
        if (lane.Buffer is { } buffer)
        {
            lane.Buffer = null;
            ((IDisposable)buffer).Dispose();
        }
        lock (_laneLock)
        {
            _bytesInFlight -= lane.ReservedBytes;
            lane.ReservedBytes = 0;
            _free.Push(lane);
        }
    }

    private void Dispatch(Lane lane)
    {
        Interlocked.Increment(ref _active);
        lane.Work.Set(true);
    }

    private Task DrainAsync()
    {
        _readerDone = true;
        if (Volatile.Read(ref _active) == 0)
        {
            _drained.TrySetResult();
        }
        return _drained.Task;
    }

    private async Task StopLanesAsync()
    {
        List<Task> loops;
        lock (_laneLock)
        {
            foreach (var lane in _free)
            {
                lane.Work.Set(false);
            }
            _free.Clear();
            loops = [.. _laneLoops];
        }
        foreach (var loop in loops)
        {
            await loop.ConfigureAwait(false);
        }
    }
}
