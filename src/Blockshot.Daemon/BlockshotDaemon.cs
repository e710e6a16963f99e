using System.Net;
using Blockshot.Daemon.Config;
using Blockshot.Daemon.Control;
using Blockshot.Daemon.Control.Methods;
using Blockshot.Daemon.Events;
using Blockshot.Daemon.Exports;
using Blockshot.Daemon.Jobs;
using Blockshot.Daemon.Protocol;
using Blockshot.Nbd;
using Microsoft.Extensions.Logging;

namespace Blockshot.Daemon;

/// <summary>
/// The Blockshot daemon: owns devices and exports, runs jobs, publishes events and takes commands on a
/// JSON-RPC control socket while I/O flows. <see cref="StartAsync"/> listens for NBD, applies the
/// configuration and then opens the control socket (so a client that reaches it finds the configured
/// state); <see cref="StopAsync"/> stops accepting, drains, flushes every device and closes it.
/// </summary>
public sealed class BlockshotDaemon : IAsyncDisposable
{
    private readonly DaemonOptions _options;
    private readonly ILogger _logger;
    private readonly EventHub _events;
    private readonly JobManager _jobs = new();
    private readonly NbdServer _nbd;
    private readonly NbdExportProvider _nbdExports;
    private readonly FuseExportProvider _fuseExports;
    private readonly ControlServer _control;
    private readonly DateTimeOffset _started = DateTimeOffset.UtcNow;
    private int _stopped;

    /// <summary>Creates the daemon; nothing listens until <see cref="StartAsync"/>.</summary>
    public BlockshotDaemon(DaemonOptions options, ILoggerFactory loggers)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggers);
        _options = options;
        _logger = loggers.CreateLogger("blockshot.daemon");
        _events = new EventHub(_logger);
        _nbd = new NbdServer(new NbdServerOptions(), loggers.CreateLogger("blockshot.nbd"));
        _nbd.ClientConnected += (_, e) => _events.Publish(EventNames.ClientConnected, ClientData(e));
        _nbd.ClientDisconnected += (_, e) => _events.Publish(EventNames.ClientDisconnected, ClientData(e));
        _nbdExports = new NbdExportProvider(_nbd);
        _fuseExports = new FuseExportProvider(
            new FuseMountRecords(options.FuseMountRecordPath ?? FuseMountRecords.FileFor(options.ControlPath)), _logger);
        IExportProvider[] providers = [_nbdExports, _fuseExports];
        Registry = new Registry(_events, _jobs, providers, _logger)
        {
            State = new SnapshotSets.PersistentState(options.StatePath ?? Path.Combine(Path.GetDirectoryName(options.ControlPath) ?? "/", "snapshots.json")),
        };
        var dispatcher = new RpcDispatcher(_logger);
        var services = new DaemonServices(Registry, _jobs, _events, InfoAsync);
        dispatcher.Add(DeviceMethods.Create(services));
        dispatcher.Add(ExportMethods.Create(services));
        dispatcher.Add(FilterMethods.Create(services));
        dispatcher.Add(JobMethods.Create(services));
        dispatcher.Add(SnapshotMethods.Create(services));
        dispatcher.Add(CbtMethods.Create(services));
        dispatcher.Add(SessionMethods.Create(services, () => dispatcher.Methods, ExportTypes));
        Dispatcher = dispatcher;
        _control = new ControlServer(dispatcher, _events, _logger);
    }

    /// <summary>The control socket path.</summary>
    public string ControlPath => _options.ControlPath;

    /// <summary>Where the NBD server listens (<c>unix:PATH</c>, <c>tcp:ADDR:PORT</c>).</summary>
    public IReadOnlyList<string> NbdEndpoints => _nbd.Endpoints;

    internal Registry Registry { get; }

    internal RpcDispatcher Dispatcher { get; }

    /// <summary>
    /// Listens, applies <paramref name="config"/> and opens the control socket. Throws
    /// <see cref="ConfigException"/> (with the place in the file) when the configuration cannot be applied,
    /// and <see cref="IOException"/> when a socket cannot be bound; what was started is stopped again.
    /// </summary>
    public async Task StartAsync(DaemonConfig config, string configSource = "configuration")
    {
        ArgumentNullException.ThrowIfNull(config);
        try
        {
            if (UnixSocketFile.IsLive(_options.ControlPath))
            {
                // Checked before cleaning: the FUSE mounts recorded there are that daemon's, and alive.
                throw new IOException($"{_options.ControlPath} is in use: another daemon is listening there");
            }
            // What a killed previous run left (stale FUSE mounts, loop devices) goes before anything is mounted.
            _fuseExports.CleanLeftovers();
            // Devices and exports first: a client that reaches either socket finds the configured state.
            await ApplyAsync(config, configSource).ConfigureAwait(false);
            ListenNbd(config.Nbd);
            _control.Listen(_options.ControlPath);
        }
        catch
        {
            await StopAsync("start failed").ConfigureAwait(false);
            throw;
        }
        DaemonLog.Started(_logger, _options.ControlPath, string.Join(", ", _nbd.Endpoints));
    }

    /// <summary>
    /// Stops accepting, cancels jobs, drains requests, takes FUSE exports away (loop devices detached,
    /// files unmounted), flushes and closes every device.
    /// </summary>
    public async Task StopAsync(string reason)
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }
        DaemonLog.Stopping(_logger, reason);
        await _control.StopAsync().ConfigureAwait(false);
        await Registry.BeginShutdownAsync().ConfigureAwait(false);
        await _nbd.StopAsync(_options.DrainTimeout).ConfigureAwait(false);
        await _fuseExports.StopAllAsync().ConfigureAwait(false);
        var closed = await Registry.CloseAllAsync().ConfigureAwait(false);
        DaemonLog.Stopped(_logger, closed);
    }

    /// <summary>Stops the daemon (see <see cref="StopAsync"/>).</summary>
    public async ValueTask DisposeAsync()
    {
        await StopAsync("disposed").ConfigureAwait(false);
        await _control.DisposeAsync().ConfigureAwait(false);
        await _nbd.DisposeAsync().ConfigureAwait(false);
    }

    private void ListenNbd(NbdListenConfig? fromConfig)
    {
        var socket = _options.NbdSocket;
        var port = _options.NbdPort;
        var bind = _options.NbdBind;
        if (socket is null && port is null && fromConfig is not null)
        {
            socket = fromConfig.Socket;
            port = fromConfig.Port;
            bind = fromConfig.Bind ?? bind;
        }
        if (port is { } p)
        {
            _nbd.ListenTcp(new IPEndPoint(IPAddress.Parse(bind), p));
        }
        else
        {
            var path = socket ?? Path.Combine(Path.GetDirectoryName(_options.ControlPath) ?? "/", "nbd.sock");
            var directory = Path.GetDirectoryName(path);
            if (!string.IsNullOrEmpty(directory))
            {
                Directory.CreateDirectory(directory);
            }
            _nbd.ListenUnix(path);
        }
    }

    private async Task ApplyAsync(DaemonConfig config, string source)
    {
        foreach (var device in config.Devices)
        {
            var filters = new List<Devices.StackEntry>();
            try
            {
                foreach (var filter in device.Filters)
                {
                    filters.Add(Registry.MakeFilter(filter.Type, filter.Name, filter.Settings));
                }
                await Registry.AddDeviceAsync(device.Name, device.File, device.Format, device.ReadOnly, device.Direct, device.Locking, filters).ConfigureAwait(false);
            }
            catch (ControlException e)
            {
                throw new ConfigException(source, [$"{device.Where}.file: {e.Message}"], e.Code);
            }
        }
        foreach (var export in config.Exports)
        {
            try
            {
                await Registry.AddExportAsync(export.Device, export.Type, export.Name, export.ReadOnly, export.Description, export.Path, export.Loop)
                    .ConfigureAwait(false);
            }
            catch (ControlException e)
            {
                throw new ConfigException(source, [$"{export.Where}: {e.Message}"], e.Code);
            }
        }
        if (config.Devices.Count + config.Exports.Count > 0)
        {
            DaemonLog.ConfigApplied(_logger, config.Devices.Count, config.Exports.Count);
        }
    }

    private async Task<DaemonInfo> InfoAsync() => new()
    {
        Version = typeof(BlockshotDaemon).Assembly.GetName().Version?.ToString(3) ?? "0.0.0",
        Protocol = RpcDispatcher.ProtocolName,
        Pid = Environment.ProcessId,
        Control = _options.ControlPath,
        Nbd = [.. _nbd.Endpoints],
        Devices = await Registry.DeviceCountAsync().ConfigureAwait(false),
        Exports = await Registry.ExportCountAsync().ConfigureAwait(false),
        Jobs = _jobs.List().Count,
        ControlClients = _control.ClientCount,
        Subscribers = _events.SubscriberCount,
        Started = _started,
    };

    private IEnumerable<ExportTypeInfo> ExportTypes() =>
        Registry.Providers.OrderBy(p => p.Type, StringComparer.Ordinal)
            .Select(p => new ExportTypeInfo { Type = p.Type, Available = p.UnavailableReason is null, Reason = p.UnavailableReason });

    private static System.Text.Json.Nodes.JsonObject ClientData(NbdClientEventArgs e) => new()
    {
        ["export"] = e.Export,
        ["connection"] = e.ConnectionId,
        ["remote"] = e.Remote,
    };
}
