using System.Net.Sockets;
using System.Text;

namespace Blockshot.Daemon.Tests;

/// <summary>The control socket in process: permissions, many clients, events, and input that must not hurt it.</summary>
public class ControlSocketTests
{
    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task The_socket_is_only_for_its_owner()
    {
        await using var d = await DaemonFixture.StartAsync();
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(d.Control));
    }

    [Fact]
    public async Task A_second_daemon_on_the_same_socket_is_refused_and_a_stale_socket_is_replaced()
    {
        await using var d = await DaemonFixture.StartAsync();
        await using var second = new BlockshotDaemon(new DaemonOptions { ControlPath = d.Control, NbdSocket = d.Dir.File("nbd2.sock") },
            Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
        var e = await Assert.ThrowsAsync<IOException>(() => second.StartAsync(Config.DaemonConfig.Empty));
        Assert.Contains("another daemon", e.Message);

        using var dir = new TempDir();
        var stale = dir.File("control.sock");
        using (var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            s.Bind(new UnixDomainSocketEndPoint(stale));
        }
        await using var third = new BlockshotDaemon(new DaemonOptions { ControlPath = stale }, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
        await third.StartAsync(Config.DaemonConfig.Empty);
        await using var client = await ControlClient.ConnectAsync(stale);
        Assert.NotNull(await client.CallAsync("daemon.info"));
    }

    [Fact]
    public async Task Many_clients_at_once_all_get_their_answers()
    {
        await using var d = await DaemonFixture.StartAsync();
        await d.Registry.AddDeviceAsync("c", d.Image("c.raw", 1 << 20), "raw", false, false, true);
        var results = await Task.WhenAll(Enumerable.Range(0, 40).Select(async i =>
        {
            await using var client = await d.ClientAsync();
            var calls = Enumerable.Range(0, 10).Select(async j =>
            {
                var node = await client.CallAsync(j % 2 == 0 ? "device.list" : "daemon.info");
                return node is not null;
            });
            return (await Task.WhenAll(calls)).Count(ok => ok);
        }));
        Assert.All(results, ok => Assert.Equal(10, ok));
    }

    [Fact]
    public async Task Subscribers_receive_the_events_they_asked_for()
    {
        await using var d = await DaemonFixture.StartAsync();
        await using var all = await d.ClientAsync();
        await using var jobsOnly = await d.ClientAsync();
        await all.CallAsync("events.subscribe");
        await jobsOnly.CallAsync("events.subscribe", new JsonObject { ["events"] = new JsonArray("job.*") });
        var image = d.Image("e.raw", 4 << 20, seed: 1);
        await using var control = await d.ClientAsync();
        await control.CallAsync("device.add", new JsonObject { ["name"] = "e", ["file"] = image });
        await control.CallAsync("filter.insert", new JsonObject { ["device"] = "e", ["type"] = "throttle" });
        var job = await control.CallAsync("mirror.start", new JsonObject { ["device"] = "e", ["target"] = d.Dir.File("t.raw") }, ProtocolJsonContext.Default.JobInfo);
        await control.CallAsync("job.wait", new JsonObject { ["id"] = job.Id });
        await control.CallAsync("device.remove", new JsonObject { ["name"] = "e" });

        var seen = await Take(all, e => e.Event == "device.removed");
        Assert.Equal(["device.added", "filter.inserted"], seen.Select(e => e.Event).Take(2));
        Assert.Contains(seen, e => e.Event == "job.status" && e.Data["job"]!["state"]!.GetValue<string>() == "completed");
        Assert.True(seen.Zip(seen.Skip(1)).All(p => p.First.Seq < p.Second.Seq), "sequence numbers must grow");
        var jobEvents = await Take(jobsOnly, e => e.Event == "job.status" && e.Data["job"]!["state"]!.GetValue<string>() == "completed");
        Assert.All(jobEvents, e => Assert.StartsWith("job.", e.Event));
        Assert.Equal("running", jobEvents[0].Data["job"]!["state"]!.GetValue<string>());
    }

    [Fact]
    public async Task Garbage_overlong_lines_and_abrupt_disconnects_leave_the_daemon_serving()
    {
        await using var d = await DaemonFixture.StartAsync();
        using (var raw = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            await raw.ConnectAsync(new UnixDomainSocketEndPoint(d.Control));
            await using var stream = new NetworkStream(raw);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            var replies = new List<JsonNode>();
            // Read while writing: a client that never reads is throttled by the daemon (its replies back up).
            var reading = Task.Run(async () =>
            {
                while (await reader.ReadLineAsync() is { } line)
                {
                    var node = JsonNode.Parse(line)!;
                    replies.Add(node);
                    if (node is JsonObject { } o && o["id"]?.GetValue<int>() == 9 && o["result"] is not null)
                    {
                        return;
                    }
                }
            });
            var overlong = new byte[3 << 20];
            overlong.AsSpan().Fill((byte)'{');
            overlong[^1] = (byte)'\n';
            await stream.WriteAsync(overlong);
            var binary = new byte[4096];
            new Random(1).NextBytes(binary);
            for (var i = 0; i < binary.Length; i += 97)
            {
                binary[i] = (byte)'\n';
            }
            await stream.WriteAsync(binary);
            await stream.WriteAsync("\n[1,2]\n{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"daemon.info\"}\n\n\n"u8.ToArray());
            await reading.WaitAsync(TimeSpan.FromSeconds(60));
            Assert.True(replies.Count > 40, $"only {replies.Count} replies to {binary.Length / 97} garbage lines");
            Assert.Equal(-32600, replies[0]["error"]!["code"]!.GetValue<int>());
            Assert.Contains("longer than", replies[0]["error"]!["message"]!.GetValue<string>());
            var batch = Assert.Single(replies.OfType<JsonArray>());
            Assert.Equal(2, batch.Count);
            Assert.All(replies.OfType<JsonObject>().SkipLast(1), r => Assert.True(r["error"]!["code"]!.GetValue<int>() is -32600 or -32700));
            Assert.NotNull(replies[^1]["result"]);
        }
        using (var rude = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            await rude.ConnectAsync(new UnixDomainSocketEndPoint(d.Control));
            await rude.SendAsync("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"job.wait\",\"params\":{\"id\":\"x\"}}"u8.ToArray());
        }
        await using var client = await d.ClientAsync();
        Assert.NotNull(await client.CallAsync("device.list"));
    }

    private static async Task<List<EventMessage>> Take(ControlClient client, Func<EventMessage, bool> last)
    {
        var seen = new List<EventMessage>();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await foreach (var e in client.Events.ReadAllAsync(timeout.Token))
        {
            seen.Add(e);
            if (last(e))
            {
                break;
            }
        }
        return seen;
    }
}
