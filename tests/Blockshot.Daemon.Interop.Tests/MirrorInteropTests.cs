namespace Blockshot.Daemon.Interop.Tests;

/// <summary>Live mirror of a daemon device under fio load, then pivot; checked by fio and qemu-img.</summary>
public class MirrorInteropTests
{
    [RequiresToolsFact("fio", "qemu-img")]
    public async Task Mirror_under_fio_verify_load_then_pivot_gives_an_identical_copy()
    {
        using var dir = new TempDir("bs-mirror");
        var source = Path.Combine(dir.Path, "source.raw");
        var target = Path.Combine(dir.Path, "target.raw");
        await using (var f = File.Create(source))
        {
            // Fully allocated, so the mirror's first pass has every byte to copy.
            for (var at = 0; at < 64 << 20; at += 1 << 20)
            {
                f.Write(Patterns.Make(1 << 20, at, 5));
            }
        }
        await using var daemon = await DaemonProcess.StartAsync(dir.Path,
            """{ "devices": [ { "name": "vm", "file": "source.raw" } ], "exports": [ { "device": "vm" } ] }""");
        await using var control = await daemon.ClientAsync();

        // fio writes 24 MiB at up to 8 MiB/s, then reads it back to verify; the mirror's first pass, paced at
        // 4 MiB/s, takes 16 s, so every write lands while the mirror runs. Then the pace is lifted.
        string[] job = ["--name=mirror-load", "--ioengine=nbd", $"--uri={daemon.Uri("vm")}", "--rw=randwrite", "--bs=4k", "--iodepth=8",
            "--size=64M", "--io_size=24M", "--rate=8m", "--verify=crc32c", "--verify_fatal=1", "--output-format=json"];
        var fio = Run.ToEndAsync("fio", job);
        await Task.Delay(300);
        var mirror = await control.CallAsync("mirror.start", new JsonObject
        {
            ["device"] = "vm",
            ["target"] = target,
            ["pivot"] = true,
            ["speed"] = 4 << 20,
        }, ProtocolJsonContext.Default.JobInfo);
        Fio.Check(await fio.WaitAsync(TimeSpan.FromMinutes(2)), "fio during the mirror");
        var during = await control.CallAsync("job.get", new JsonObject { ["id"] = mirror.Id }, ProtocolJsonContext.Default.JobInfo);
        Assert.True(during.State == "running", $"the mirror must still run when the load ends (it is {during.State}); the machine is too slow for this test");
        Assert.True(during.BytesDone > 0);
        await control.CallAsync("job.set-speed", new JsonObject { ["id"] = mirror.Id, ["speed"] = 0 });
        var done = await control.CallAsync("job.wait", new JsonObject { ["id"] = mirror.Id, ["timeout-ms"] = 120000 }, ProtocolJsonContext.Default.JobInfo);
        Assert.True(done.State == "completed", $"mirror {done.State}: {done.Error}");
        Assert.True(done.Result!["pivoted"]!.GetValue<bool>());

        var device = await control.CallAsync("device.get", new JsonObject { ["name"] = "vm" }, ProtocolJsonContext.Default.DeviceInfo);
        Assert.Equal(target, device.File);
        Assert.Equal($"raw({target})", device.Stack);

        // fio re-reads everything it wrote through the export, now served from the target.
        Fio.Check(await Run.ToEndAsync("fio", [.. job, "--verify_only"]), "fio verify-only after the pivot");
        // And the old image equals the new one: nothing was written after the pivot but reads.
        var compare = await Run.ToEndAsync("qemu-img", ["compare", "-U", "-f", "raw", "-F", "raw", source, target]);
        Assert.True(compare.ExitCode == 0, $"qemu-img compare: {compare.Stdout} {compare.Stderr}");
        Assert.Contains("Images are identical", compare.Stdout);
    }

    [RequiresToolsFact("qemu-img")]
    public async Task The_cli_mirror_prints_plain_progress_lines_and_job_wait_reports_a_cancelled_job()
    {
        using var dir = new TempDir("bs-mirror");
        await using (var f = File.Create(Path.Combine(dir.Path, "d.raw")))
        {
            f.SetLength(32 << 20);
            for (var at = 0; at < 32 << 20; at += 1 << 20)
            {
                f.Write(Patterns.Make(1 << 20, at, 9));
            }
        }
        await using var daemon = await DaemonProcess.StartAsync(dir.Path, """{ "devices": [ { "name": "d", "file": "d.raw" } ] }""");
        var copy = Path.Combine(dir.Path, "copy.raw");
        var run = (await Run.BlockshotAsync("--control", daemon.Control, "mirror", "d", copy, "--speed", "8M")).Ok("mirror");
        Assert.Matches(@"job-1 running \d+\.\d% \(", run.Stderr);
        Assert.Contains("job job-1 completed: 32.0 MiB", run.Stdout);
        (await Run.ToEndAsync("qemu-img", ["compare", "-U", "-f", "raw", "-F", "raw", Path.Combine(dir.Path, "d.raw"), copy])).Ok("compare");

        var detached = (await Run.BlockshotAsync("--control", daemon.Control, "-o", "json", "mirror", "d", Path.Combine(dir.Path, "slow.raw"),
            "--speed", "1M", "--detach", "--id", "slow")).Ok("mirror --detach");
        Assert.Equal("slow", JsonNode.Parse(detached.Stdout)!["id"]!.GetValue<string>());
        var wait = Run.BlockshotAsync("--control", daemon.Control, "job", "wait", "slow");
        await Task.Delay(1500);
        (await Run.BlockshotAsync("--control", daemon.Control, "job", "cancel", "slow")).Ok("job cancel");
        var waited = await wait;
        Assert.Equal(8, waited.ExitCode);
        Assert.Contains("job slow was cancelled", waited.Stdout);
        var jobs = (await Run.BlockshotAsync("--control", daemon.Control, "-o", "json", "job", "list")).Ok("job list");
        var states = JsonNode.Parse(jobs.Stdout)!.AsArray().Select(j => (j!["id"]!.GetValue<string>(), j["state"]!.GetValue<string>())).ToList();
        Assert.Equal([("job-1", "completed"), ("slow", "cancelled")], states);
    }
}
