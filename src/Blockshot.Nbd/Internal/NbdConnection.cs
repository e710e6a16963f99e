using System.Net.Sockets;
using Blockshot.Core.Buffers;
using Microsoft.Extensions.Logging;

namespace Blockshot.Nbd.Internal;

/// <summary>
/// One client connection, on a thread of its own: the handshake, then a reader that parses requests
/// and hands each to a lane, lanes that run requests concurrently, and replies written in the order
/// they finish (coalescing small ones). Socket I/O is blocking, so the kernel wakes the thread that
/// waits instead of an event loop that passes the work on. Partial files split it by concern.
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
    private readonly SemaphoreSlim _laneFreed = new(0);
    private int _readerThreadId;

    // Requests handed to lanes and not yet returned; _readerDone is set once the reader stops.
    private int _active;
    private volatile bool _readerDone;
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);

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

    /// <summary>Starts the connection's thread; the task completes when the connection has ended.</summary>
    public Task Start()
    {
        var ended = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                Run();
            }
            catch (Exception e)
            {
                // A bug, not a client's doing. The connection's own clean-up has run (Run's finally); on a
                // thread of its own the exception would end the whole process, so it is logged, and the
                // connection counts as ended for those who wait for it (an export's removal, the server's stop).
                NbdLog.ConnectionCrashed(_logger, Id, e);
            }
            ended.SetResult();
        })
        { IsBackground = true, Name = $"nbd-conn-{Id}" };
        thread.Start();
        return ended.Task;
    }

    public long Id { get; }

    /// <summary>The socket's send buffer as the kernel reports it (doubled for its bookkeeping).</summary>
    public int SendBufferBytes => _socket.SendBufferSize;

    public string Remote { get; }

    /// <summary>The export chosen in the handshake, once chosen.</summary>
    public NbdExport? Export { get; private set; }

    /// <summary>Runs the connection to its end on the calling thread; never throws.</summary>
    private void Run()
    {
        // This thread serves every request of the connection in turn: it must not wait for the disk.
        Core.Threading.BlockingPolicy.ForbidBlockingOnThisThread();
        _readerThreadId = Environment.CurrentManagedThreadId;
        var reason = "client disconnected";
        var transmitting = false;
        try
        {
            if (!Handshake())
            {
                reason = "handshake ended";
                return;
            }
            _server.OnAttached(this);
            Export!.OnTransmitting();
            transmitting = true;
            StartSender();
            _reader.BeforeReceive = FlushOwedReplies;
            reason = ReadLoop();
        }
        catch (Exception e) when (e is SocketException or EndOfStreamException or IOException or ObjectDisposedException)
        {
            reason = e.Message;
        }
        finally
        {
            if (transmitting)
            {
                // Requests already read finish and are answered (if the socket still works).
                FlushOwedReplies();
                Drain();
                StopSender();
                Export!.OnTransmissionEnded();
            }
            StopLanesAsync().GetAwaiter().GetResult();
            ShutdownQuietly(SocketShutdown.Both);
            _socket.Dispose();
            NbdLog.Closed(_logger, Id, reason);
            _server.OnClosed(this);
        }
    }

    /// <summary>Stops reading new requests; those in flight finish and are answered.</summary>
    public void RequestStop() => ShutdownQuietly(SocketShutdown.Receive);

    private void ShutdownQuietly(SocketShutdown how)
    {
        try
        {
            _socket.Shutdown(how);
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
    private Lane AcquireLane(long payloadBytes)
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
            // Replies owed hold lanes: they go out before the wait, or it would never end.
            FlushOwedReplies();
            _laneFreed.Wait();
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
            _laneFreed.Release();
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

    private void Drain()
    {
        _readerDone = true;
        if (Volatile.Read(ref _active) == 0)
        {
            _drained.TrySetResult();
        }
        _drained.Task.Wait();
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
