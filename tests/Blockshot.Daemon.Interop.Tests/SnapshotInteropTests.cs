using System.Diagnostics;
using static Blockshot.Daemon.Interop.Tests.SnapshotCli;

namespace Blockshot.Daemon.Interop.Tests;

/// <summary>Snapshots through the real daemon process, checked with real peers (fio, qemu-img, qemu-io, nbdinfo).</summary>
public class SnapshotInteropTests
{
    private const long Size = 32 << 20;

    [RequiresToolsFact("fio", "qemu-img")]
    public async Task A_snapshot_taken_under_fio_writes_equals_the_device_at_the_take()
    {
        using var dir = new TempDir("bs-snap");
        var image = dir.File("disk.raw");
        File.WriteAllBytes(image, new byte[Size]);
        await using var daemon = await DaemonProcess.StartAsync(dir.Path);
        (await Cli(daemon, "device", "add", "disk", image)).Ok("device add");
        (await Cli(daemon, "export", "add", "disk")).Ok("export add");

        using var fio = Process.Start(Run.Info("fio", [.. Fio.VerifyingWrites(daemon.Uri("disk"), "snap", Size, runtimeSeconds: 12, rate: "8m"), "--thread"]))!;
        fio.StandardInput.Close();
        var fioOut = fio.StandardOutput.ReadToEndAsync();
        var fioErr = fio.StandardError.ReadToEndAsync();
        await Task.Delay(TimeSpan.FromSeconds(4));

        // Pause the writer (its job is a thread, so SIGSTOP stops it) so the reference copy and the take see the
        // same device; fio resumes right after.
        Signal(fio, stop: true);
        await Task.Delay(TimeSpan.FromSeconds(1)); // requests fio had already sent are read and answered
        await DrainedAsync(daemon, "disk");
        File.Copy(image, dir.File("at-take.raw"));
        (await Cli(daemon, "snapshot", "create", "--device", "disk", "--storage", "memory", "--name", "s1")).Ok("snapshot create");
        Signal(fio, stop: false);

        await fio.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(90));
        Fio.Check(new Run.Result(fio.ExitCode, await fioOut, await fioErr), "fio under a snapshot");
        (await Cli(daemon, "snapshot", "export", "s1", "--device", "disk", "--read-only")).Ok("snapshot export");
        var same = await CompareAsync(dir.File("at-take.raw"), daemon.Uri("disk.s1"));
        Assert.True(same.ExitCode == 0, $"the snapshot differs from the device at the take: {same.Stdout} {same.Stderr}");
        var moved = await CompareAsync(dir.File("at-take.raw"), daemon.Uri("disk"));
        Assert.True(moved.ExitCode == 1, "fio wrote after the take, so the device must differ from the snapshot");
        var info = await Json(daemon, "snapshot", "info", "s1");
        Assert.True(info["devices"]![0]!["copied-chunks"]!.GetValue<long>() > 0);
    }

    [RequiresToolsTheory("qemu-img", "qemu-io")]
    [InlineData("memory")]
    [InlineData("file")]
    [InlineData("dir")]
    [InlineData("multi")]
    [InlineData("tiered")]
    public async Task Each_storage_kind_keeps_the_old_data_and_is_released_at_destroy(string kind)
    {
        using var dir = new TempDir("bs-store");
        var image = dir.File("disk.raw");
        File.WriteAllBytes(image, new byte[Size]);
        Directory.CreateDirectory(dir.File("store"));
        var storage = kind switch
        {
            "file" => $"file:{dir.File("store/diff")}",
            "dir" => $"dir:{dir.File("store")}",
            "multi" => $"multi:{dir.File("store/a")},{dir.File("store/b")}",
            "tiered" => $"tiered:4M,file:{dir.File("store/diff")}",
            _ => "memory",
        };
        await using var daemon = await DaemonProcess.StartAsync(dir.Path);
        (await Cli(daemon, "device", "add", "disk", image)).Ok("device add");
        (await Cli(daemon, "export", "add", "disk")).Ok("export add");
        await WriteAsync(daemon.Uri("disk"), 0x5a, 0, Size);
        File.Copy(image, dir.File("at-take.raw"));
        // multi: each member is limited to 16 MiB, so the 24 MiB rewrite below must spill into the second.
        (await Cli(daemon, "snapshot", "create", "-d", "disk", "--storage", storage, "--name", "s", "--limit", kind == "multi" ? "16M" : "64M",
            "--initial", "1M", "--grow-step", "1M")).Ok("snapshot create");
        await WriteAsync(daemon.Uri("disk"), 0xa5, 4 << 20, 24 << 20);
        (await Cli(daemon, "snapshot", "export", "s", "-d", "disk")).Ok("snapshot export");
        var same = await CompareAsync(dir.File("at-take.raw"), daemon.Uri("disk.s"));
        Assert.True(same.ExitCode == 0, $"{kind}: the snapshot differs from the device at the take: {same.Stdout} {same.Stderr}");
        var member = (await Json(daemon, "snapshot", "info", "s"))["devices"]![0]!;
        Assert.Equal("active", member["state"]!.GetValue<string>());
        Assert.Equal(24L << 20, member["storage-used"]!.GetValue<long>());
        if (kind == "multi")
        {
            Assert.True(new FileInfo(dir.File("store/b")).Length > 0, "the second member of multi: storage was never used");
        }
        if (kind == "dir")
        {
            Assert.Empty(Directory.GetFileSystemEntries(dir.File("store")));
        }

        var refused = await Cli(daemon, "snapshot", "destroy", "s");
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("exported as disk.s", refused.Stderr);
        (await Cli(daemon, "snapshot", "destroy", "s", "--force")).Ok("destroy --force");
        Assert.Empty(Directory.GetFileSystemEntries(dir.File("store")));
        var gone = await Run.ToEndAsync("nbdinfo", ["--size", daemon.Uri("disk.s")]);
        Assert.NotEqual(0, gone.ExitCode);
        var device = await Json(daemon, "device", "list");
        Assert.DoesNotContain("cbw", device[0]!["stack"]!.GetValue<string>());
        await WriteAsync(daemon.Uri("disk"), 0x11, 0, 1 << 20);
    }

    [RequiresToolsFact("qemu-io")]
    public async Task Storage_on_a_device_of_the_set_is_refused_and_nothing_changes()
    {
        using var dir = new TempDir("bs-same");
        File.WriteAllBytes(dir.File("a.raw"), new byte[Size]);
        File.WriteAllBytes(dir.File("b.raw"), new byte[Size]);
        await using var daemon = await DaemonProcess.StartAsync(dir.Path);
        (await Cli(daemon, "device", "add", "a", dir.File("a.raw"))).Ok("add a");
        (await Cli(daemon, "device", "add", "b", dir.File("b.raw"))).Ok("add b");
        var refused = await Cli(daemon, "snapshot", "create", "-d", "a", "-d", "b", "--storage", $"multi:{dir.File("c.raw")},{dir.File("b.raw")}");
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("is on device b", refused.Stderr);
        Assert.Contains("same snapshot set", refused.Stderr);
        Assert.False(File.Exists(dir.File("c.raw")));
        var bad = await Cli(daemon, "snapshot", "create", "-d", "a", "--storage", "tape:/dev/st0");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("expected memory, file:PATH", bad.Stderr);
        Assert.Equal("no snapshots", (await Cli(daemon, "snapshot", "list")).Ok("list").Stdout.Trim());
    }

    [RequiresToolsFact("qemu-io", "qemu-img")]
    public async Task Overflow_breaks_the_snapshot_with_events_and_the_device_keeps_working()
    {
        using var dir = new TempDir("bs-overflow");
        var image = dir.File("disk.raw");
        File.WriteAllBytes(image, new byte[Size]);
        await using var daemon = await DaemonProcess.StartAsync(dir.Path);
        await using var events = await daemon.ClientAsync();
        await events.CallAsync("events.subscribe", new JsonObject { ["events"] = new JsonArray("snapshot.*") });
        (await Cli(daemon, "device", "add", "disk", image, "--track")).Ok("device add");
        (await Cli(daemon, "export", "add", "disk")).Ok("export add");
        await WriteAsync(daemon.Uri("disk"), 0x66, 0, 8 << 20); // zero chunks need no storage, so give it data
        (await Cli(daemon, "snapshot", "create", "-d", "disk", "--storage", "memory", "--limit", "2M", "--name", "small")).Ok("create");
        await WriteAsync(daemon.Uri("disk"), 0x77, 0, 8 << 20);

        var seen = new List<EventMessage>();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (!seen.Any(e => e.Event == "snapshot.failed"))
        {
            Assert.True(await events.Events.WaitToReadAsync(cts.Token), "the event stream ended");
            while (events.Events.TryRead(out var e))
            {
                seen.Add(e);
            }
        }
        var names = seen.Select(e => e.Event).ToList();
        Assert.Equal(["snapshot.created", "snapshot.low-space", "snapshot.overflow", "snapshot.failed"], names.Distinct());
        var failed = seen.Single(e => e.Event == "snapshot.failed");
        Assert.Equal("small", failed.Data["name"]!.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(failed.Data["time"]?.GetValue<string>()));

        // The device took every write and reads it back; the snapshot refuses to be exported, with the reason.
        (await Run.ToEndAsync("qemu-io", ["-f", "raw", "-r", "-c", $"read -P 0x77 0 {8 << 20}", daemon.Uri("disk")])).Ok("read back");
        var info = (await Json(daemon, "snapshot", "info", "small"))["devices"]![0]!;
        Assert.Equal("failed", info["state"]!.GetValue<string>());
        var export = await Cli(daemon, "snapshot", "export", "small", "-d", "disk");
        Assert.Equal(1, export.ExitCode);
        Assert.Contains("failed", export.Stderr);
        Assert.Equal(128, (await Json(daemon, "cbt", "map", "disk", "--since", "0"))["ranges"]![0]!["length"]!.GetValue<long>() >> 16);
    }

    [RequiresToolsFact("qemu-io", "qemu-img")]
    public async Task Two_devices_in_one_set_with_hooks_and_a_failing_hook_leaves_both_running()
    {
        using var dir = new TempDir("bs-set");
        File.WriteAllBytes(dir.File("a.raw"), new byte[Size]);
        File.WriteAllBytes(dir.File("b.raw"), new byte[Size]);
        await using var daemon = await DaemonProcess.StartAsync(dir.Path);
        foreach (var d in new[] { "a", "b" })
        {
            (await Cli(daemon, "device", "add", d, dir.File(d + ".raw"))).Ok("add " + d);
            (await Cli(daemon, "export", "add", d)).Ok("export " + d);
            await WriteAsync(daemon.Uri(d), d == "a" ? 1 : 2, 0, Size);
        }
        var log = dir.File("hooks.log");
        var failed = await Cli(daemon, "snapshot", "create", "-d", "a", "-d", "b", "--storage", "memory",
            "--freeze-hook", $"echo freeze >> {log}; exit 3", "--thaw-hook", $"echo thaw >> {log}");
        Assert.Equal(1, failed.ExitCode);
        Assert.Contains("exited 3", failed.Stderr);
        Assert.Equal(["freeze", "thaw"], File.ReadAllLines(log));
        foreach (var d in (await Json(daemon, "device", "list")).AsArray())
        {
            Assert.False(d!["suspended"]!.GetValue<bool>());
            Assert.DoesNotContain("cbw", d["stack"]!.GetValue<string>());
        }

        File.Delete(log);
        (await Cli(daemon, "snapshot", "create", "-d", "a", "-d", "b", "--storage", "memory", "--name", "pair",
            "--freeze-hook", $"echo freeze >> {log}", "--thaw-hook", $"echo thaw >> {log}")).Ok("create the set");
        Assert.Equal(["freeze", "thaw"], File.ReadAllLines(log));
        await WriteAsync(daemon.Uri("a"), 9, 0, Size);
        await WriteAsync(daemon.Uri("b"), 9, 0, Size);
        foreach (var d in new[] { "a", "b" })
        {
            (await Cli(daemon, "snapshot", "export", "pair", "-d", d, "-r")).Ok("export " + d);
            (await Run.ToEndAsync("qemu-io", ["-f", "raw", "-r", "-c", $"read -P {(d == "a" ? 1 : 2)} 0 {Size}", daemon.Uri($"{d}.pair")])).Ok("read " + d);
        }
        var list = (await Cli(daemon, "snapshot", "list")).Ok("list").Stdout;
        Assert.Matches(@"(?m)^pair\s+a\s+active", list);
        Assert.Matches(@"(?m)^pair\s+b\s+active", list);
        (await Cli(daemon, "snapshot", "destroy", "pair", "--device", "a", "--force")).Ok("destroy a's");
        Assert.Single((await Json(daemon, "snapshot", "info", "pair"))["devices"]!.AsArray());
    }

    [RequiresToolsFact("qemu-io", "qemu-img")]
    public async Task A_persistent_snapshot_reopens_with_identical_content_after_a_clean_stop_and_after_kill_9()
    {
        using var dir = new TempDir("bs-persist");
        var image = dir.File("disk.raw");
        File.WriteAllBytes(image, new byte[Size]);
        var daemon = await DaemonProcess.StartAsync(dir.Path);
        try
        {
            (await Cli(daemon, "device", "add", "disk", image)).Ok("device add");
            (await Cli(daemon, "export", "add", "disk")).Ok("export add");
            await WriteAsync(daemon.Uri("disk"), 0x31, 0, Size);
            File.Copy(image, dir.File("at-take.raw"));
            (await Cli(daemon, "snapshot", "create", "-d", "disk", "--storage", $"file:{dir.File("diff")}", "--persistent", "--name", "p")).Ok("create");
            await WriteAsync(daemon.Uri("disk"), 0x32, 1 << 20, 8 << 20);
            Assert.Equal(0, await daemon.TerminateAsync());
        }
        finally
        {
            await daemon.DisposeAsync();
        }
        for (var round = 0; round < 2; round++)
        {
            daemon = await DaemonProcess.StartAsync(dir.Path);
            try
            {
                (await Cli(daemon, "device", "add", "disk", image)).Ok("device add again");
                (await Cli(daemon, "export", "add", "disk")).Ok("export add again");
                (await Cli(daemon, "snapshot", "export", "p", "-d", "disk", "-r")).Ok("snapshot export after restart");
                var same = await CompareAsync(dir.File("at-take.raw"), daemon.Uri("disk.p"));
                Assert.True(same.ExitCode == 0, $"round {round}: the reopened snapshot differs: {same.Stdout} {same.Stderr}");
                await WriteAsync(daemon.Uri("disk"), 0x40 + round, 12 << 20, 4 << 20);
            }
            finally
            {
                // Round 0 ends with kill -9: the next open must still prove the snapshot (or report it failed).
                await daemon.DisposeAsync();
            }
        }
    }
}
