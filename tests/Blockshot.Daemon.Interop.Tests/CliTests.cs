namespace Blockshot.Daemon.Interop.Tests;

/// <summary>The client commands against a daemon process: tables, JSON, events and exit codes.</summary>
public class CliTests
{
    [Fact]
    public async Task An_unreachable_daemon_gets_exit_code_7_and_the_control_path_comes_from_the_environment()
    {
        using var dir = new TempDir("bs-cli");
        var missing = Path.Combine(dir.Path, "nobody.sock");
        var r = await Run.BlockshotAsync("--control", missing, "device", "list");
        Assert.Equal(7, r.ExitCode);
        Assert.Contains($"cannot reach the daemon at {missing}", r.Stderr);
        var env = await Run.ToEndAsync(Repo.Launcher, ["export", "list"], environment: new Dictionary<string, string> { ["BLOCKSHOT_CONTROL"] = missing });
        Assert.Equal(7, env.ExitCode);
        Assert.Contains(missing, env.Stderr);
    }

    [Fact]
    public async Task Device_and_export_commands_print_tables_json_and_documented_exit_codes()
    {
        using var dir = new TempDir("bs-cli");
        var image = Path.Combine(dir.Path, "a.raw");
        File.WriteAllBytes(image, new byte[16 << 20]);
        await using var daemon = await DaemonProcess.StartAsync(dir.Path);
        var env = new Dictionary<string, string> { ["BLOCKSHOT_CONTROL"] = daemon.Control };
        Task<Run.Result> Cli(params string[] args) => Run.ToEndAsync(Repo.Launcher, args, environment: env);

        var events = Run.ToEndAsync(Repo.Launcher, ["events", "--count", "2", "-o", "json"], TimeSpan.FromSeconds(60), env);
        await WaitForSubscriberAsync(daemon);
        (await Cli("device", "add", "a", image)).Ok("device add");
        var taken = await Cli("device", "add", "a", image);
        Assert.Equal(1, taken.ExitCode);
        Assert.Contains("a device named a exists", taken.Stderr);
        var added = (await Cli("export", "add", "a", "--name", "a-exp", "--read-only")).Ok("export add");
        Assert.Contains($"nbd+unix:///a-exp?socket={daemon.NbdSocket}", added.Stdout);

        var table = (await Cli("device", "list")).Ok("device list");
        Assert.Matches(@"(?m)^NAME\s+SIZE\s+FORMAT\s+MODE\s+STATE\s+FILTERS\s+EXPORTS\s+FILE$", table.Stdout);
        Assert.Matches(@"(?m)^a\s+16\.0 MiB\s+raw\s+read-write\s+running\s+-\s+a-exp\s+", table.Stdout);
        var json = JsonNode.Parse((await Cli("-o", "json", "export", "list")).Ok("export list").Stdout)!.AsArray();
        Assert.True(json.Single()!["read-only"]!.GetValue<bool>());

        var seen = (await events).Ok("events").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(["device.added", "export.added"], seen.Take(2).Select(e => e["event"]!.GetValue<string>()));

        Assert.Equal(3, (await Cli("device", "remove", "ghost")).ExitCode);
        var inUse = await Cli("device", "remove", "a");
        Assert.Equal(1, inUse.ExitCode);
        Assert.Contains("exported as a-exp", inUse.Stderr);
        var fuse = await Cli("export", "add", "a", "--type", "fuse");
        Assert.True(fuse.ExitCode == 2, $"exit {fuse.ExitCode}: {fuse.Stderr}");
        Assert.Contains("--type fuse needs --path FILE", fuse.Stderr);
        var nbdLoop = await Cli("export", "add", "a", "--loop");
        Assert.True(nbdLoop.ExitCode == 2, $"exit {nbdLoop.ExitCode}: {nbdLoop.Stderr}");
        Assert.Contains("--path and --loop apply to --type fuse only", nbdLoop.Stderr);
        Assert.Equal(2, (await Cli("export", "add", "a", "--type", "iscsi")).ExitCode);
        var suspend = (await Cli("device", "suspend", "a")).Ok("suspend");
        Assert.Contains("suspended device a", suspend.Stdout);
        Assert.Contains("suspended", (await Cli("device", "list")).Stdout);
        (await Cli("device", "resume", "a")).Ok("resume");
        (await Cli("device", "reload", "a")).Ok("reload");
        (await Cli("device", "remove", "a", "--force")).Ok("device remove --force");
        Assert.Equal("no devices", (await Cli("device", "list")).Ok("list").Stdout.Trim());
    }

    private static async Task WaitForSubscriberAsync(DaemonProcess daemon)
    {
        await using var probe = await daemon.ClientAsync();
        for (var i = 0; i < 1200; i++)
        {
            if ((await probe.CallAsync("daemon.info", null, ProtocolJsonContext.Default.DaemonInfo)).Subscribers > 0)
            {
                return;
            }
            await Task.Delay(50);
        }
        throw new TimeoutException("blockshot events never subscribed");
    }
}
