using System.Diagnostics;

namespace Blockshot.Daemon.Interop.Tests;

/// <summary>Filters inserted and removed while a real NBD client does verified I/O.</summary>
public class LiveFilterTests
{
    private const string Config = """{ "devices": [ { "name": "disk", "file": "disk.raw" } ], "exports": [ { "device": "disk" } ] }""";

    [RequiresToolsFact("fio")]
    public async Task Fio_verified_io_sees_no_error_and_no_reconnect_while_filters_go_in_and_out_100_times_and_the_image_is_reloaded()
    {
        using var dir = new TempDir("bs-live");
        File.WriteAllBytes(Path.Combine(dir.Path, "disk.raw"), new byte[64 << 20]);
        await using var daemon = await DaemonProcess.StartAsync(dir.Path, Config);
        await using var events = await daemon.ClientAsync();
        await events.CallAsync("events.subscribe", new JsonObject { ["events"] = new JsonArray("export.*") });
        await using var control = await daemon.ClientAsync();

        var fio = Run.ToEndAsync("fio", Fio.VerifyingWrites(daemon.Uri("disk"), "live", 32 << 20, runtimeSeconds: 20));
        var connection = await WaitForSteadyClientAsync(control, events);
        var swaps = new List<double>();
        var reloads = 0;
        for (var i = 0; i < 100 && !fio.IsCompleted; i++)
        {
            var (type, settings) = (i % 2) == 0
                ? ("throttle", new JsonObject { ["bps"] = "2G", ["iops"] = "1000000" })
                : ("fault", new JsonObject { ["error"] = "none", ["delay-ms"] = "1", ["probability"] = "0.01" });
            var t = Stopwatch.StartNew();
            await control.CallAsync("filter.insert", new JsonObject { ["device"] = "disk", ["type"] = type, ["settings"] = settings });
            await control.CallAsync("filter.remove", new JsonObject { ["device"] = "disk", ["name"] = type });
            swaps.Add(t.Elapsed.TotalMilliseconds);
            if (i % 20 == 10)
            {
                // Reopen the image under the live export: close, open again, same stack, no reconnect.
                await control.CallAsync("filter.insert", new JsonObject { ["device"] = "disk", ["type"] = "throttle" });
                var reloaded = await control.CallAsync("device.reload", new JsonObject { ["name"] = "disk" }, ProtocolJsonContext.Default.DeviceInfo);
                Assert.StartsWith("throttle(", reloaded.Stack);
                await control.CallAsync("filter.remove", new JsonObject { ["device"] = "disk", ["name"] = "throttle" });
                reloads++;
            }
        }
        Assert.Equal(5, reloads);
        Assert.True(swaps.Count == 100, $"fio ended after {swaps.Count} cycles: {(fio.IsCompleted ? (await fio).Stderr : "")}");
        Assert.False(fio.IsCompleted, "fio must still be running when the cycles end, or the test proved nothing");
        var device = await control.CallAsync("device.get", new JsonObject { ["name"] = "disk" }, ProtocolJsonContext.Default.DeviceInfo);
        Assert.Empty(device.Filters);

        // fio ends on its own (runtime) and must have verified everything it wrote without an error.
        Fio.Check(await fio.WaitAsync(TimeSpan.FromSeconds(90)), "fio under live filter swaps");
        // The one connection fio held through the cycles is the only one that came or went since: no reconnect.
        var after = await ReadEventsAsync(events, e => e.Event == "export.client-disconnected" && e.Data["connection"]!.GetValue<long>() == connection);
        Assert.DoesNotContain(after, e => e.Event == "export.client-connected");
        Assert.Single(after, e => e.Event == "export.client-disconnected");
    }

    // Waits until fio's job connection is attached and has stayed for a while (fio also opens a short
    // connection first to learn the size); returns its connection id.
    private static async Task<long> WaitForSteadyClientAsync(ControlClient control, ControlClient events)
    {
        var open = new HashSet<long>();
        var clock = Stopwatch.StartNew();
        var steadySince = TimeSpan.MaxValue;
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            while (events.Events.TryRead(out var e))
            {
                var id = e.Data["connection"]!.GetValue<long>();
                if (e.Event == "export.client-connected")
                {
                    open.Add(id);
                }
                else if (e.Event == "export.client-disconnected")
                {
                    open.Remove(id);
                }
                steadySince = open.Count == 1 ? clock.Elapsed : TimeSpan.MaxValue;
            }
            if (open.Count == 1 && clock.Elapsed - steadySince > TimeSpan.FromMilliseconds(500))
            {
                return open.Single();
            }
            await Task.Delay(20);
        }
        throw new TimeoutException("fio never held a steady connection");
    }

    private static async Task<List<EventMessage>> ReadEventsAsync(ControlClient events, Func<EventMessage, bool> last)
    {
        var seen = new List<EventMessage>();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await foreach (var e in events.Events.ReadAllAsync(timeout.Token))
        {
            seen.Add(e);
            if (last(e))
            {
                break;
            }
        }
        return seen;
    }

    [Fact]
    public async Task The_cli_inserts_and_removes_filters_and_a_fault_filter_turns_writes_into_eio()
    {
        using var dir = new TempDir("bs-live");
        File.WriteAllBytes(Path.Combine(dir.Path, "disk.raw"), new byte[8 << 20]);
        await using var daemon = await DaemonProcess.StartAsync(dir.Path, Config);
        var insert = (await Run.BlockshotAsync("--control", daemon.Control, "filter", "insert", "disk", "fault", "--set", "ops=write", "--set", "error=eio",
            "--set", "offset=1M", "--set", "length=1M")).Ok("filter insert");
        Assert.Contains("fault(write: io)", insert.Stdout);

        await using (var client = await Nbd.Client.NbdClient.ConnectUnixAsync(daemon.NbdSocket, "disk"))
        {
            await client.WriteAsync(0, new byte[4096]);
            var e = await Assert.ThrowsAnyAsync<Exception>(() => client.WriteAsync(1 << 20, new byte[4096]));
            Assert.Contains("5", e.Message); // EIO
            await client.WriteAsync(2 << 20, new byte[4096]);
        }

        var list = (await Run.BlockshotAsync("--control", daemon.Control, "-o", "json", "filter", "list", "disk")).Ok("filter list");
        var fault = JsonNode.Parse(list.Stdout)!.AsArray().Single()!;
        Assert.Equal(1, fault["counters"]!["injected"]!.GetValue<long>());
        (await Run.BlockshotAsync("--control", daemon.Control, "filter", "remove", "disk", "fault")).Ok("filter remove");
        var bad = await Run.BlockshotAsync("--control", daemon.Control, "filter", "insert", "disk", "throttle", "--set", "bps=quick");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("bps: 'quick' is not a size", bad.Stderr);
    }
}
