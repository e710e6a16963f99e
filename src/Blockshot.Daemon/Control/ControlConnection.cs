using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Threading.Channels;
using Blockshot.Daemon.Events;
using Microsoft.Extensions.Logging;

namespace Blockshot.Daemon.Control;

/// <summary>
/// One control client: a reader that splits input into lines (at most <see cref="MaxLine"/> bytes; a
/// longer one is answered with an error and skipped), requests handled concurrently (at most
/// <see cref="MaxConcurrent"/> at a time, so a client that floods waits for its own replies), and one
/// writer that sends replies and events in order. Events are queued without waiting; a client that
/// reads too slowly loses events and is told how many.
/// </summary>
internal sealed class ControlConnection : ISubscriptionHost, IEventSubscriber
{
    public const int MaxLine = 1 << 20;
    public const int MaxConcurrent = 16;
    private const int MaxQueued = 1024;
    private static readonly TimeSpan DrainReplies = TimeSpan.FromSeconds(60);

    private readonly Socket _socket;
    private readonly RpcDispatcher _dispatcher;
    private readonly EventHub _events;
    private readonly ILogger _logger;
    private readonly Channel<byte[]> _outgoing = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(MaxQueued) { SingleReader = true });
    private readonly SemaphoreSlim _concurrency = new(MaxConcurrent, MaxConcurrent);
    private readonly CancellationTokenSource _closing;

    // Guarded by _subscriptionLock.
    private readonly Lock _subscriptionLock = new();
    private string[]? _patterns;
    private long _dropped;

    public ControlConnection(long id, Socket socket, RpcDispatcher dispatcher, EventHub events, ILogger logger, CancellationToken daemonStopping)
    {
        Id = id;
        _socket = socket;
        _dispatcher = dispatcher;
        _events = events;
        _logger = logger;
        _closing = CancellationTokenSource.CreateLinkedTokenSource(daemonStopping);
    }

    public long Id { get; }

    /// <summary>Serves the connection until the client leaves or the daemon stops.</summary>
    public async Task RunAsync()
    {
        DaemonLog.ControlOpened(_logger, Id);
        var reason = "client closed the connection";
        await using var stream = new NetworkStream(_socket, ownsSocket: true);
        var writer = WriteLoopAsync(stream);
        var pending = new List<Task>();
        var clean = false;
        try
        {
            var input = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 64 << 10, leaveOpen: true));
            await ReadLoopAsync(input, pending).ConfigureAwait(false);
            await input.CompleteAsync().ConfigureAwait(false);
            clean = true;
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            reason = e is OperationCanceledException ? "daemon stopping" : e.Message;
        }
        finally
        {
            Unsubscribe();
            // A client that only closed its sending side still gets the replies to what it sent (within a
            // limit); one that is gone has its requests cancelled at once.
            if (!clean)
            {
                Abort();
            }
            var running = Task.WhenAll(pending.Where(t => !t.IsCompleted));
            if (await Task.WhenAny(running, Task.Delay(DrainReplies)).ConfigureAwait(false) != running)
            {
                Abort();
                await running.ConfigureAwait(false);
            }
            _outgoing.Writer.TryComplete();
            await writer.ConfigureAwait(false);
            await _closing.CancelAsync().ConfigureAwait(false);
            _closing.Dispose();
            _concurrency.Dispose();
            DaemonLog.ControlClosed(_logger, Id, reason);
        }
    }

    /// <summary>Ends the connection (daemon stopping).</summary>
    public void Abort()
    {
        try
        {
            _closing.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Already closed.
        }
    }

    public IReadOnlyList<string> Subscribe(IReadOnlyList<string> patterns)
    {
        var chosen = patterns.Count == 0 ? ["*"] : patterns.ToArray();
        lock (_subscriptionLock)
        {
            _patterns = chosen;
        }
        _events.Subscribe(this);
        return chosen;
    }

    public bool Unsubscribe()
    {
        bool had;
        lock (_subscriptionLock)
        {
            had = _patterns is not null;
            _patterns = null;
        }
        _events.Unsubscribe(this);
        return had;
    }

    public bool Wants(string name)
    {
        string[]? patterns;
        lock (_subscriptionLock)
        {
            patterns = _patterns;
        }
        if (patterns is null)
        {
            return false;
        }
        foreach (var pattern in patterns)
        {
            if (pattern == "*" || pattern == name || (pattern.EndsWith('*') && name.StartsWith(pattern[..^1], StringComparison.Ordinal)))
            {
                return true;
            }
        }
        return false;
    }

    public void Deliver(string name, byte[] line)
    {
        if (Interlocked.Read(ref _dropped) > 0 || !_outgoing.Writer.TryWrite(line))
        {
            if (Interlocked.Increment(ref _dropped) == 1)
            {
                DaemonLog.EventsDropped(_logger, Id);
            }
            TryReportDropped();
        }
    }

    private void TryReportDropped()
    {
        var dropped = Interlocked.Read(ref _dropped);
        if (dropped == 0)
        {
            return;
        }
        var notice = EventHub.Serialize(new Protocol.EventMessage
        {
            Event = EventNames.EventsDropped,
            Time = DateTimeOffset.UtcNow,
            Data = new System.Text.Json.Nodes.JsonObject { ["count"] = dropped },
        });
        if (_outgoing.Writer.TryWrite(notice))
        {
            Interlocked.Add(ref _dropped, -dropped);
        }
    }

    private async Task ReadLoopAsync(PipeReader input, List<Task> pending)
    {
        var token = _closing.Token;
        var skipping = false;
        while (true)
        {
            var read = await input.ReadAsync(token).ConfigureAwait(false);
            var buffer = read.Buffer;
            while (TryTakeLine(ref buffer, out var line))
            {
                if (skipping)
                {
                    skipping = false;
                    continue;
                }
                if (IsBlank(line))
                {
                    continue;
                }
                var copy = line.ToArray();
                await _concurrency.WaitAsync(token).ConfigureAwait(false);
                pending.RemoveAll(t => t.IsCompleted);
                pending.Add(HandleAsync(copy, token));
            }
            if (buffer.Length > MaxLine)
            {
                // A line longer than allowed: answer once, then drop input up to the next newline.
                if (!skipping)
                {
                    await SendAsync(RpcDispatcher.ErrorReply(default, Protocol.ControlErrorCodes.InvalidRequest,
                        $"a request line is longer than {MaxLine} bytes; it was skipped"), token).ConfigureAwait(false);
                    DaemonLog.BadInput(_logger, Id, "request line too long");
                }
                skipping = true;
                buffer = buffer.Slice(buffer.End);
            }
            input.AdvanceTo(buffer.Start, buffer.End);
            if (read.IsCompleted)
            {
                return;
            }
        }
    }

    private async Task HandleAsync(byte[] line, CancellationToken token)
    {
        try
        {
            var context = new RpcContext(Id, this);
            var reply = await _dispatcher.HandleAsync(line, context, token).ConfigureAwait(false);
            if (reply is not null)
            {
                await SendAsync(reply, token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
        {
            // The connection is going away; the reply has nobody to go to.
        }
        finally
        {
            try
            {
                _concurrency.Release();
            }
            catch (ObjectDisposedException)
            {
                // Closed meanwhile.
            }
        }
    }

    private async Task SendAsync(byte[] reply, CancellationToken token)
    {
        await _outgoing.Writer.WriteAsync(reply, token).ConfigureAwait(false);
        TryReportDropped();
    }

    private async Task WriteLoopAsync(Stream stream)
    {
        var newline = new byte[] { (byte)'\n' };
        try
        {
            var token = _closing.Token;
            await foreach (var message in _outgoing.Reader.ReadAllAsync(token).ConfigureAwait(false))
            {
                await stream.WriteAsync(message, token).ConfigureAwait(false);
                await stream.WriteAsync(newline, token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // The client left; the reader notices too.
            Abort();
        }
    }

    private static bool TryTakeLine(ref ReadOnlySequence<byte> buffer, out ReadOnlySequence<byte> line)
    {
        var position = buffer.PositionOf((byte)'\n');
        if (position is null)
        {
            line = default;
            return false;
        }
        line = buffer.Slice(0, position.Value);
        buffer = buffer.Slice(buffer.GetPosition(1, position.Value));
        return true;
    }

    private static bool IsBlank(ReadOnlySequence<byte> line)
    {
        foreach (var segment in line)
        {
            if (segment.Span.IndexOfAnyExcept((byte)' ', (byte)'\r', (byte)'\t') >= 0)
            {
                return false;
            }
        }
        return true;
    }
}
