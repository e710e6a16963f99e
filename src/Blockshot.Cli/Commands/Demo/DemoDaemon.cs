using System.Text.Json.Nodes;
using Blockshot.Daemon;
using Blockshot.Daemon.Config;
using Blockshot.Daemon.Protocol;
using Microsoft.Extensions.Logging;

namespace Blockshot.Cli.Commands.Demo;

/// <summary>
/// The daemon the demo runs in its own process, built the way <c>blockshot daemon</c> builds it (control
/// socket and NBD socket in the demo directory), and driven only through its control socket, with the
/// same calls the CLI's device, export, snapshot and cbt commands make.
/// </summary>
internal sealed class DemoDaemon : IAsyncDisposable
{
    private readonly ILoggerFactory _loggers;
    private readonly BlockshotDaemon _daemon;
    private ControlClient? _client;

    private DemoDaemon(string dir)
    {
        // Only the daemon's warnings and errors, on stderr: the demo's own lines tell the story.
        _loggers = LoggerFactory.Create(builder => builder.SetMinimumLevel(LogLevel.Warning)
            .AddSimpleConsole(o => o.SingleLine = true)
            .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace));
        Options = new DaemonOptions { ControlPath = Path.Combine(dir, "control.sock"), NbdSocket = Path.Combine(dir, "nbd.sock") };
        _daemon = new BlockshotDaemon(Options, _loggers);
    }

    public DaemonOptions Options { get; }

    public IReadOnlyList<string> NbdEndpoints => _daemon.NbdEndpoints;

    private ControlClient Client => _client ?? throw new InvalidOperationException("the daemon is not started");

    /// <summary>Starts the daemon and connects to its control socket.</summary>
    public static async Task<DemoDaemon> StartAsync(string dir, CancellationToken ct)
    {
        var demo = new DemoDaemon(dir);
        try
        {
            await demo._daemon.StartAsync(DaemonConfig.Empty, "demo").ConfigureAwait(false);
            demo._client = await ControlClient.ConnectAsync(demo.Options.ControlPath, ct).ConfigureAwait(false);
            return demo;
        }
        catch
        {
            await demo.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public Task<DeviceInfo> AddTrackedDeviceAsync(string name, string file, CancellationToken ct) =>
        Client.CallAsync("device.add", new JsonObject { ["name"] = name, ["file"] = file, ["track"] = true }, ProtocolJsonContext.Default.DeviceInfo, ct);

    public Task<CbtInfo> CbtInfoAsync(string device, CancellationToken ct) =>
        Client.CallAsync("cbt.info", new JsonObject { ["device"] = device }, ProtocolJsonContext.Default.CbtInfo, ct);

    public Task<CbtMap> CbtMapAsync(string device, int since, CancellationToken ct) =>
        Client.CallAsync("cbt.map", new JsonObject { ["device"] = device, ["since"] = since }, ProtocolJsonContext.Default.CbtMap, ct);

    public Task<ExportInfo> ExportDeviceAsync(string device, CancellationToken ct) =>
        Client.CallAsync("export.add", new JsonObject { ["device"] = device, ["type"] = "nbd" }, ProtocolJsonContext.Default.ExportInfo, ct);

    public async Task<SnapshotMemberInfo> TakeSnapshotAsync(string device, string name, string storage, CancellationToken ct)
    {
        var args = new JsonObject { ["devices"] = new JsonArray(device), ["name"] = name, ["storage"] = storage };
        var info = await Client.CallAsync("snapshot.create", args, ProtocolJsonContext.Default.SnapshotInfo, ct).ConfigureAwait(false);
        return info.Devices.Single();
    }

    public async Task<SnapshotMemberInfo> SnapshotInfoAsync(string name, CancellationToken ct)
    {
        var info = await Client.CallAsync("snapshot.info", new JsonObject { ["name"] = name }, ProtocolJsonContext.Default.SnapshotInfo, ct).ConfigureAwait(false);
        return info.Devices.Single();
    }

    public Task<ExportInfo> ExportSnapshotAsync(string device, string name, CancellationToken ct) =>
        Client.CallAsync("snapshot.export", new JsonObject { ["name"] = name, ["device"] = device, ["type"] = "nbd", ["read-only"] = true },
            ProtocolJsonContext.Default.ExportInfo, ct);

    public Task DestroySnapshotAsync(string name, CancellationToken ct) =>
        Client.CallAsync("snapshot.destroy", new JsonObject { ["name"] = name, ["force"] = true }, ct);

    /// <summary>Stops the daemon the way SIGTERM does: drain, flush, close every device.</summary>
    public async Task StopAsync()
    {
        if (_client is { } client)
        {
            _client = null;
            await client.DisposeAsync().ConfigureAwait(false);
        }
        await _daemon.StopAsync("demo finished").ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        await _daemon.DisposeAsync().ConfigureAwait(false);
        _loggers.Dispose();
    }
}
