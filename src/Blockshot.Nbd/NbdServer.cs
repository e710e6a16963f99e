using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Blockshot.Nbd.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Blockshot.Nbd;

/// <summary>
/// An NBD server: fixed newstyle handshake, structured replies, metadata contexts, many requests in
/// flight per connection with out-of-order replies, several named exports, Unix and TCP listeners
/// and inherited (socket-activated) listeners. Exports are handed slots; the server never looks
/// devices up.
/// </summary>
public sealed class NbdServer : IAsyncDisposable
{
    private readonly NbdServerOptions _options;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, NbdExport> _exports = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<long, NbdConnection> _connections = new();
    private readonly ConcurrentDictionary<long, Task> _connectionTasks = new();
    private readonly List<(Socket Socket, Task Loop, string Endpoint, string? UnixPath)> _listeners = [];
    private readonly SemaphoreSlim _connectionSlots;
    private readonly CancellationTokenSource _stopping = new();
    private long _nextId;

    /// <summary>Creates a server; add exports and listeners next.</summary>
    public NbdServer(NbdServerOptions? options = null, ILogger? logger = null)
    {
        _options = options ?? new NbdServerOptions();
        _logger = logger ?? NullLogger.Instance;
        _connectionSlots = new SemaphoreSlim(_options.MaxConnections, _options.MaxConnections);
    }

    /// <summary>Raised when a client has chosen an export.</summary>
    public event EventHandler<NbdClientEventArgs>? ClientConnected;

    /// <summary>Raised when a client that had chosen an export disconnects.</summary>
    public event EventHandler<NbdClientEventArgs>? ClientDisconnected;

    /// <summary>The exports, in no particular order.</summary>
    public IReadOnlyCollection<NbdExport> Exports => [.. _exports.Values.OrderBy(e => e.Name, StringComparer.Ordinal)];

    /// <summary>Connections currently open (including those still in the handshake).</summary>
    public int ConnectionCount => _connections.Count;

    /// <summary>The export a client gets when it asks for the empty name, if any.</summary>
    public string? DefaultExportName =>
        _options.DefaultExport ?? (_exports.Count == 1 ? _exports.Keys.First() : null);

    /// <summary>The addresses listened on, e.g. <c>unix:/run/x.sock</c> or <c>tcp:127.0.0.1:10809</c>.</summary>
    public IReadOnlyList<string> Endpoints
    {
        get
        {
            lock (_listeners)
            {
                return [.. _listeners.Select(l => l.Endpoint)];
            }
        }
    }

    /// <summary>Adds an export; fails if the name is taken.</summary>
    public void AddExport(NbdExport export)
    {
        ArgumentNullException.ThrowIfNull(export);
        if (!_exports.TryAdd(export.Name, export))
        {
            throw new InvalidOperationException($"an export named '{export.Name}' already exists");
        }
    }

    /// <summary>Removes an export and disconnects its clients (requests in flight finish first).</summary>
    public async Task<bool> RemoveExportAsync(string name)
    {
        if (!_exports.TryRemove(name, out var export))
        {
            return false;
        }
        var closing = new List<Task>();
        foreach (var (id, connection) in _connections)
        {
            if (connection.Export == export)
            {
                connection.RequestStop();
                if (_connectionTasks.TryGetValue(id, out var task))
                {
                    closing.Add(task);
                }
            }
        }
        await Task.WhenAll(closing).ConfigureAwait(false);
        return true;
    }

    /// <summary>Number of clients attached to the named export.</summary>
    public int ClientsOf(string exportName) => _connections.Values.Count(c => c.Export?.Name == exportName);

    /// <summary>Looks up an export by name; the empty name means the default export.</summary>
    internal NbdExport? FindExport(string name)
    {
        if (_exports.TryGetValue(name, out var export))
        {
            return export;
        }
        return name.Length == 0 && DefaultExportName is { } fallback && _exports.TryGetValue(fallback, out export) ? export : null;
    }

    /// <summary>Listens on a Unix socket, replacing a stale socket file left by a dead server.</summary>
    public void ListenUnix(string path)
    {
        if (File.Exists(path) || Directory.Exists(path))
        {
            if (!IsSocketFile(path) || IsLive(path))
            {
                throw new IOException($"{path} exists and is {(IsSocketFile(path) ? "in use by a running server" : "not a socket")}");
            }
            File.Delete(path);
        }
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Bind(new UnixDomainSocketEndPoint(path));
            socket.Listen(128);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        Start(socket, "unix:" + path, path);
    }

    /// <summary>Listens on a TCP address.</summary>
    public IPEndPoint ListenTcp(IPEndPoint endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            socket.Bind(endpoint);
            socket.Listen(128);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        var bound = (IPEndPoint)socket.LocalEndPoint!;
        Start(socket, "tcp:" + bound, null);
        return bound;
    }

    /// <summary>Serves an already-listening socket (systemd socket activation).</summary>
    public void Listen(Socket listening, string description)
    {
        ArgumentNullException.ThrowIfNull(listening);
        Start(listening, description, null);
    }

    /// <summary>
    /// Stops accepting, lets requests in flight finish and be answered, closes every connection, and
    /// waits up to <paramref name="drainTimeout"/> for that.
    /// </summary>
    public async Task StopAsync(TimeSpan drainTimeout)
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }
        await _stopping.CancelAsync().ConfigureAwait(false);
        List<(Socket Socket, Task Loop, string Endpoint, string? UnixPath)> listeners;
        lock (_listeners)
        {
            listeners = [.. _listeners];
        }
        foreach (var listener in listeners)
        {
            listener.Socket.Dispose();
            if (listener.UnixPath is { } path && IsSocketFile(path))
            {
                File.Delete(path);
            }
        }
        foreach (var connection in _connections.Values)
        {
            connection.RequestStop();
        }
        var all = Task.WhenAll(_connectionTasks.Values.Concat(listeners.Select(l => l.Loop)));
        await Task.WhenAny(all, Task.Delay(drainTimeout)).ConfigureAwait(false);
    }

    /// <summary>Stops the server (see <see cref="StopAsync"/>) with a 10-second drain.</summary>
    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        _stopping.Dispose();
    }

    internal void OnAttached(NbdConnection connection)
    {
        NbdLog.Attached(_logger, connection.Id, connection.Remote, connection.Export!.Name);
        ClientConnected?.Invoke(this, new NbdClientEventArgs(connection.Id, connection.Export.Name, connection.Remote));
    }

    internal void OnClosed(NbdConnection connection)
    {
        _connections.TryRemove(connection.Id, out _);
        _connectionSlots.Release();
        if (connection.Export is { } export)
        {
            ClientDisconnected?.Invoke(this, new NbdClientEventArgs(connection.Id, export.Name, connection.Remote));
        }
    }

    private void Start(Socket socket, string endpoint, string? unixPath)
    {
        NbdLog.Listening(_logger, endpoint);
        lock (_listeners)
        {
            _listeners.Add((socket, AcceptLoopAsync(socket, endpoint), endpoint, unixPath));
        }
    }

    private async Task AcceptLoopAsync(Socket listener, string endpoint)
    {
        await Task.Yield();
        var token = _stopping.Token;
        while (!token.IsCancellationRequested)
        {
            try
            {
                await _connectionSlots.WaitAsync(token).ConfigureAwait(false);
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
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                _connectionSlots.Release();
                return;
            }
            catch (SocketException e)
            {
                _connectionSlots.Release();
                NbdLog.AcceptFailed(_logger, endpoint, e);
                await Task.Delay(100, CancellationToken.None).ConfigureAwait(false);
                continue;
            }
            if (client.ProtocolType == ProtocolType.Tcp)
            {
                client.NoDelay = true;
            }
            TuneSendBuffer(client);
            var id = Interlocked.Increment(ref _nextId);
            var remote = client.RemoteEndPoint is IPEndPoint ip ? ip.ToString() : "unix";
            var connection = new NbdConnection(this, client, id, remote, _options, _logger);
            _connections[id] = connection;
            NbdLog.Accepted(_logger, id, remote);
            var task = connection.Start();
            _connectionTasks[id] = task;
            _ = task.ContinueWith(_ => _connectionTasks.TryRemove(id, out Task? _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    /// <summary>Read replies answered from the page cache with no copy (sendfile), counted as they are queued.</summary>
    public long ZeroCopyReplies => Interlocked.Read(ref ZeroCopyReplyCount);

    // Counted by the connections.
    internal long ZeroCopyReplyCount;

    /// <summary>The send buffer of each open connection's socket, as the kernel reports it (for tests).</summary>
    internal IReadOnlyList<int> ConnectionSendBufferSizes => [.. _connections.Values.Select(c => c.SendBufferBytes)];

    // A large reply then goes out in one send instead of in pieces, each waiting for the client to read
    // the previous one. A refusal (an odd socket type) leaves the default: it costs speed, not correctness.
    private void TuneSendBuffer(Socket client)
    {
        if (_options.SendBufferBytes <= 0)
        {
            return;
        }
        try
        {
            client.SendBufferSize = _options.SendBufferBytes;
        }
        catch (SocketException e)
        {
            NbdLog.SendBufferRefused(_logger, _options.SendBufferBytes, e.Message);
        }
    }

    private static bool IsSocketFile(string path) => Core.Platform.FileStatus.TryGet(path, out var s, followLinks: false) && s.IsSocket;

    private static bool IsLive(string path)
    {
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
