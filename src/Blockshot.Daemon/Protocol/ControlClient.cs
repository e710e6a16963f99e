using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using System.Threading.Channels;

namespace Blockshot.Daemon.Protocol;

/// <summary>
/// A client of the daemon's control socket: newline-delimited JSON-RPC 2.0. Calls may overlap (each
/// has its own id); event notifications arrive on <see cref="Events"/> once subscribed.
/// </summary>
public sealed class ControlClient : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly ConcurrentDictionary<long, TaskCompletionSource<JsonNode?>> _pending = new();
    private readonly Channel<EventMessage> _events = Channel.CreateUnbounded<EventMessage>(new UnboundedChannelOptions { SingleWriter = true });
    private readonly Task _reader;
    private long _nextId;
    private volatile Exception? _closed;

    private ControlClient(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: false);
        _reader = Task.Run(ReadLoopAsync);
    }

    /// <summary>Event notifications, in the order the daemon sent them.</summary>
    public ChannelReader<EventMessage> Events => _events.Reader;

    /// <summary>
    /// Connects to the control socket at <paramref name="path"/>. Throws
    /// <see cref="ControlUnreachableException"/> when nothing listens there or access is denied.
    /// </summary>
    public static async Task<ControlClient> ConnectAsync(string path, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            var why = e.SocketErrorCode switch
            {
                SocketError.AddressNotAvailable or SocketError.ConnectionRefused when !File.Exists(path) => "no such socket (is the daemon running?)",
                SocketError.ConnectionRefused => "connection refused (the daemon is not running; the socket file is stale)",
                SocketError.AccessDenied => "permission denied (the socket is only for the daemon's user)",
                _ => e.Message,
            };
            throw new ControlUnreachableException($"cannot reach the daemon at {path}: {why}", e);
        }
        catch (Exception e) when (e is ArgumentException or IOException)
        {
            socket.Dispose();
            throw new ControlUnreachableException($"cannot reach the daemon at {path}: {e.Message}", e);
        }
        return new ControlClient(socket);
    }

    /// <summary>Calls <paramref name="method"/> and returns its result; throws <see cref="ControlException"/> on an error reply.</summary>
    public async Task<JsonNode?> CallAsync(string method, JsonObject? parameters = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(method);
        var id = Interlocked.Increment(ref _nextId);
        var reply = new TaskCompletionSource<JsonNode?>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = reply;
        try
        {
            var request = new JsonObject { ["jsonrpc"] = "2.0", ["id"] = id, ["method"] = method };
            if (parameters is not null)
            {
                request["params"] = parameters;
            }
            await SendLineAsync(Encoding.UTF8.GetBytes(request.ToJsonString()), cancellationToken).ConfigureAwait(false);
            return await reply.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _pending.TryRemove(id, out _);
        }
    }

    /// <summary>Calls <paramref name="method"/> and deserializes its result.</summary>
    public async Task<T> CallAsync<T>(string method, JsonObject? parameters, JsonTypeInfo<T> type, CancellationToken cancellationToken = default)
    {
        var node = await CallAsync(method, parameters, cancellationToken).ConfigureAwait(false)
            ?? throw new ControlException(ControlErrorCodes.InternalError, $"{method} returned no result");
        return node.Deserialize(type) ?? throw new ControlException(ControlErrorCodes.InternalError, $"{method} returned null");
    }

    /// <summary>Sends one raw line (for tests of malformed input); replies are not matched to it.</summary>
    public Task SendRawAsync(string line, CancellationToken cancellationToken = default) =>
        SendLineAsync(Encoding.UTF8.GetBytes(line), cancellationToken);

    /// <summary>Closes the connection; calls still waiting fail.</summary>
    public async ValueTask DisposeAsync()
    {
        _socket.Shutdown(SocketShutdown.Both);
        _socket.Dispose();
        try
        {
            await _reader.ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            // The reader ends with the socket; what it saw is reported to pending calls.
        }
        await _stream.DisposeAsync().ConfigureAwait(false);
        _writeLock.Dispose();
    }

    private async Task SendLineAsync(byte[] line, CancellationToken cancellationToken)
    {
        if (_closed is { } closed)
        {
            throw new ControlUnreachableException($"the control connection is closed: {closed.Message}", closed);
        }
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var framed = new byte[line.Length + 1];
            line.CopyTo(framed, 0);
            framed[^1] = (byte)'\n';
            await _stream.WriteAsync(framed, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException)
        {
            throw new ControlUnreachableException($"the daemon closed the control connection: {e.Message}", e);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async Task ReadLoopAsync()
    {
        Exception reason = new IOException("the daemon closed the connection");
        try
        {
            using var reader = new StreamReader(_stream, Encoding.UTF8, detectEncodingFromByteOrderMarks: false, leaveOpen: true);
            while (await reader.ReadLineAsync().ConfigureAwait(false) is { } line)
            {
                Dispatch(line);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            reason = e;
        }
        finally
        {
            _closed = reason;
            _events.Writer.TryComplete();
            foreach (var pending in _pending.Values)
            {
                pending.TrySetException(new ControlUnreachableException($"the daemon closed the control connection: {reason.Message}", reason));
            }
        }
    }

    private void Dispatch(string line)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(line);
        }
        catch (JsonException)
        {
            return;
        }
        if (node is not JsonObject message)
        {
            return;
        }
        if (message["method"]?.GetValue<string>() == "event" && message["params"] is JsonObject p)
        {
            var evt = p.Deserialize(ProtocolJsonContext.Default.EventMessage);
            if (evt is not null)
            {
                _events.Writer.TryWrite(evt);
            }
            return;
        }
        if (message["id"] is not JsonValue idValue || !idValue.TryGetValue<long>(out var id) || !_pending.TryGetValue(id, out var reply))
        {
            return;
        }
        if (message["error"] is JsonObject error)
        {
            var code = error["code"] is JsonValue c && c.TryGetValue<int>(out var v) ? v : ControlErrorCodes.InternalError;
            reply.TrySetException(new ControlException(code, error["message"]?.GetValue<string>() ?? "error"));
        }
        else
        {
            reply.TrySetResult(message["result"]?.DeepClone());
        }
    }
}
