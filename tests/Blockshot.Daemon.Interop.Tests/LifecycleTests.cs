using Blockshot.Nbd.Client;

namespace Blockshot.Daemon.Interop.Tests;

/// <summary>Starting from a configuration, stopping on SIGTERM without losing acknowledged writes, and failing clearly.</summary>
public class LifecycleTests
{
    private const string Config = """
        { "devices": [ { "name": "disk", "file": "disk.raw", "filters": [ { "type": "throttle", "settings": { "iops": 1000000 } } ] } ],
          "exports": [ { "device": "disk" } ] }
        """;

    [Fact]
    public async Task Sigterm_during_io_loses_no_acknowledged_write()
    {
        using var dir = new TempDir("bs-life");
        const int Block = 64 << 10;
        const int Blocks = 512;
        File.WriteAllBytes(Path.Combine(dir.Path, "disk.raw"), new byte[(long)Block * Blocks]);
        var daemon = await DaemonProcess.StartAsync(dir.Path, Config);
        var acknowledged = new bool[Blocks];
        var rounds = new int[Blocks];
        int code;
        await using (daemon)
        {
            var writers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
            {
                var done = 0;
                try
                {
                    await using var client = await NbdClient.ConnectUnixAsync(daemon.NbdSocket, "disk");
                    for (var round = 0; ; round++)
                    {
                        for (var i = w; i < Blocks; i += 4)
                        {
                            await client.WriteAsync((long)i * Block, Patterns.Make(Block, (long)i * Block, round * 1000 + i));
                            lock (acknowledged)
                            {
                                acknowledged[i] = true;
                                rounds[i] = round;
                            }
                            done++;
                        }
                    }
                }
                catch (Exception e) when (e is IOException or NbdClientException or System.Net.Sockets.SocketException or ObjectDisposedException)
                {
                    // The daemon went away mid-stream: what was acknowledged before must be on disk.
                }
                return done;
            })).ToArray();
            await Task.Delay(1500);
            code = await daemon.TerminateAsync();
            var written = await Task.WhenAll(writers).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.True(written.Sum() > 50, $"only {written.Sum()} writes were acknowledged before SIGTERM");
            Assert.True(code == 0, $"daemon exited {code} on SIGTERM: {daemon.Stderr}");
            Assert.Contains("stopped: 1 device(s) flushed and closed", daemon.Stderr);
        }

        await using var again = await DaemonProcess.StartAsync(dir.Path, Config);
        await using var reader = await NbdClient.ConnectUnixAsync(again.NbdSocket, "disk");
        var buffer = new byte[Block];
        var checkedBlocks = 0;
        for (var i = 0; i < Blocks; i++)
        {
            if (!acknowledged[i])
            {
                continue;
            }
            await reader.ReadAsync((long)i * Block, buffer);
            // A block may hold the acknowledged round or a later one whose write was in flight at SIGTERM.
            var matches = Enumerable.Range(rounds[i], 2).Any(r => Patterns.FirstDifference(Patterns.Make(Block, (long)i * Block, r * 1000 + i), buffer) < 0);
            Assert.True(matches, $"block {i} lost its acknowledged write (round {rounds[i]})");
            checkedBlocks++;
        }
        Assert.True(checkedBlocks > 0);
    }

    [Fact]
    public async Task Configuration_errors_exit_non_zero_with_the_place_in_the_file()
    {
        using var dir = new TempDir("bs-life");
        await File.WriteAllTextAsync(Path.Combine(dir.Path, "bad.json"), """{ "devices": [ { "name": "d", "file": "d.raw", "filters": [ { "type": "throttle", "settings": { "bps": "fast" } } ] } ], "exportz": [] }""");
        var bad = await Run.BlockshotAsync("daemon", "--control", Path.Combine(dir.Path, "c.sock"), "--config", Path.Combine(dir.Path, "bad.json"));
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("$.devices[0].filters[0].settings: throttle: bps: 'fast' is not a size", bad.Stderr);
        Assert.Contains("$.exportz: unknown key", bad.Stderr);

        await File.WriteAllTextAsync(Path.Combine(dir.Path, "missing.json"), """{ "devices": [ { "name": "d", "file": "nope.raw" } ] }""");
        var missing = await Run.BlockshotAsync("daemon", "--control", Path.Combine(dir.Path, "c.sock"), "--config", Path.Combine(dir.Path, "missing.json"));
        Assert.Equal(3, missing.ExitCode);
        Assert.Contains("$.devices[0].file:", missing.Stderr);
        Assert.False(File.Exists(Path.Combine(dir.Path, "c.sock")), "a daemon that failed to start left its control socket");

        var noFile = await Run.BlockshotAsync("daemon", "--control", Path.Combine(dir.Path, "c.sock"), "--config", Path.Combine(dir.Path, "absent.json"));
        Assert.Equal(2, noFile.ExitCode);
        Assert.Contains("cannot read the file", noFile.Stderr);
    }

    [Fact]
    public async Task A_second_daemon_on_a_live_control_socket_fails_clearly()
    {
        using var dir = new TempDir("bs-life");
        await using var first = await DaemonProcess.StartAsync(dir.Path);
        var second = await Run.BlockshotAsync("daemon", "--control", first.Control, "--nbd-socket", Path.Combine(dir.Path, "other.sock"));
        Assert.Equal(1, second.ExitCode);
        Assert.Contains("another daemon is listening there", second.Stderr);
        Assert.False(first.HasExited);
    }

    [Fact]
    public async Task Under_systemd_the_daemon_reports_ready_and_stopping()
    {
        using var dir = new TempDir("bs-life");
        var notify = Path.Combine(dir.Path, "notify.sock");
        using var listener = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Dgram,
            System.Net.Sockets.ProtocolType.Unspecified);
        listener.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(notify));
        var daemon = await DaemonProcess.StartAsync(dir.Path, null, new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notify });
        await using (daemon)
        {
            var buffer = new byte[4096];
            var n = await listener.ReceiveAsync(buffer, System.Net.Sockets.SocketFlags.None).WaitAsync(TimeSpan.FromSeconds(30));
            var ready = System.Text.Encoding.UTF8.GetString(buffer, 0, n);
            Assert.Contains("READY=1", ready);
            Assert.Contains($"MAINPID={daemon.Pid}", ready);
            Assert.Equal(0, await daemon.TerminateAsync());
            n = await listener.ReceiveAsync(buffer, System.Net.Sockets.SocketFlags.None).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal("STOPPING=1", System.Text.Encoding.UTF8.GetString(buffer, 0, n));
        }
    }

    [RequiresToolsFact("systemd-analyze")]
    public async Task The_sample_systemd_unit_verifies()
    {
        using var dir = new TempDir("bs-life");
        var unit = (await File.ReadAllTextAsync(Path.Combine(Repo.Root, "packaging", "blockshot.service"))).Replace("/usr/local/bin/blockshot", Repo.Launcher, StringComparison.Ordinal);
        var path = Path.Combine(dir.Path, "blockshot.service");
        await File.WriteAllTextAsync(path, unit);
        var verify = await Run.ToEndAsync("systemd-analyze", ["verify", path]);
        Assert.True(verify.ExitCode == 0 && verify.Stderr.Trim().Length == 0, $"systemd-analyze verify: {verify.Stdout} {verify.Stderr}");
    }
}
