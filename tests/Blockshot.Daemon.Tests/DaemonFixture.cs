using Blockshot.Daemon.Config;
using Microsoft.Extensions.Logging.Abstractions;

namespace Blockshot.Daemon.Tests;

/// <summary>An in-process daemon listening in a temporary directory, stopped on dispose.</summary>
public sealed class DaemonFixture : IAsyncDisposable
{
    private DaemonFixture(TempDir dir, BlockshotDaemon daemon)
    {
        Dir = dir;
        Daemon = daemon;
    }

    public TempDir Dir { get; }

    public BlockshotDaemon Daemon { get; }

    internal Registry Registry => Daemon.Registry;

    public string Control => Daemon.ControlPath;

    public string NbdSocket => Dir.File("nbd.sock");

    public static async Task<DaemonFixture> StartAsync(DaemonConfig? config = null)
    {
        var dir = new TempDir("blockshot-daemon");
        var daemon = new BlockshotDaemon(new DaemonOptions { ControlPath = dir.File("control.sock") }, NullLoggerFactory.Instance);
        await daemon.StartAsync(config ?? DaemonConfig.Empty);
        return new DaemonFixture(dir, daemon);
    }

    /// <summary>A raw image of <paramref name="size"/> bytes filled with <see cref="Patterns"/> data (seed <paramref name="seed"/>), or zeros.</summary>
    public string Image(string name, long size, int? seed = null)
    {
        var path = Dir.File(name);
        using var f = new FileStream(path, FileMode.Create);
        f.SetLength(size);
        if (seed is { } s)
        {
            for (long at = 0; at < size; at += 1 << 20)
            {
                var n = (int)Math.Min(1 << 20, size - at);
                f.Write(Patterns.Make(n, at, s));
            }
        }
        return path;
    }

    public Task<ControlClient> ClientAsync() => ControlClient.ConnectAsync(Control);

    /// <summary>Calls a method over a fresh in-process line, bypassing the socket.</summary>
    public async Task<JsonObject> RawAsync(string line)
    {
        var reply = await Daemon.Dispatcher.HandleAsync(System.Text.Encoding.UTF8.GetBytes(line), new Control.RpcContext(1, null), CancellationToken.None);
        Assert.NotNull(reply);
        return (JsonObject)JsonNode.Parse(reply)!;
    }

    public async ValueTask DisposeAsync()
    {
        await Daemon.DisposeAsync();
        Dir.Dispose();
    }
}
