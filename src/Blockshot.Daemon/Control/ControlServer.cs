using System.Collections.Concurrent;
using System.Net.Sockets;
using Blockshot.Daemon.Events;
using Microsoft.Extensions.Logging;

namespace Blockshot.Daemon.Control;

/// <summary>
/// The control socket: a Unix socket with mode 0600, newline-delimited JSON-RPC 2.0, many clients at
/// once (up to <see cref="MaxClients"/>; more wait in the backlog).
/// </summary>
internal sealed class ControlServer : IAsyncDisposable
{
    public const int MaxClients = 128;

    private readonly RpcDispatcher _dispatcher;
    private readonly EventHub _events;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<long, (ControlConnection Connection, Task Task)> _connections = new();
    private readonly SemaphoreSlim _slots = new(MaxClients, MaxClients);
    private Socket? _listener;
    private Task? _acceptLoop;
    private long _nextId;

    public ControlServer(RpcDispatcher dispatcher, EventHub events, ILogger logger)
    {
        _dispatcher = dispatcher;
        _events = events;
        _logger = logger;
    }

    public string? Path { get; private set; }

    public int ClientCount => _connections.Count;

    public void Listen(string path)
    {
        _listener = UnixSocketFile.ListenPrivate(path);
        Path = path;
        _acceptLoop = AcceptLoopAsync(_listener);
    }

    /// <summary>Stops accepting, closes every connection and removes the socket file.</summary>
    public async Task StopAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }
        await _stopping.CancelAsync().ConfigureAwait(false);
        _listener?.Dispose();
        if (Path is not null && File.Exists(Path))
        {
            File.Delete(Path);
        }
        foreach (var (connection, _) in _connections.Values)
        {
            connection.Abort();
        }
        var tasks = _connections.Values.Select(c => c.Task).Append(_acceptLoop ?? Task.CompletedTask);
        await Task.WhenAny(Task.WhenAll(tasks), Task.Delay(TimeSpan.FromSeconds(5))).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }

    private async Task AcceptLoopAsync(Socket listener)
    {
        await Task.Yield();
        var token = _stopping.Token;
        while (!token.IsCancellationRequested)
        {
            try
            {
                await _slots.WaitAsync(token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            Socket client;
            try
            {
                client = await listener.AcceptAsync(token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                _slots.Release();
                if (token.IsCancellationRequested)
                {
                    return;
                }
                await Task.Delay(50, CancellationToken.None).ConfigureAwait(false);
                continue;
            }
            var id = Interlocked.Increment(ref _nextId);
            var connection = new ControlConnection(id, client, _dispatcher, _events, _logger, token);
            var task = Task.Run(async () =>
            {
                try
                {
                    await connection.RunAsync().ConfigureAwait(false);
                }
                finally
                {
                    _connections.TryRemove(id, out _);
                    _slots.Release();
                }
            }, CancellationToken.None);
            _connections[id] = (connection, task);
        }
    }
}
