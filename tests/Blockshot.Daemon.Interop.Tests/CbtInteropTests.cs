using System.Diagnostics;
using System.Globalization;
using static Blockshot.Daemon.Interop.Tests.SnapshotCli;

namespace Blockshot.Daemon.Interop.Tests;

/// <summary>Changed-block tracking through the real daemon: the dirty bitmap read by nbdinfo and qemu-img, and kill -9 recovery.</summary>
public class CbtInteropTests
{
    private const long Size = 32 << 20;

    [RequiresToolsFact("qemu-io", "qemu-img", "nbdinfo")]
    public async Task Nbdinfo_and_qemu_img_read_the_same_dirty_bitmap_as_cbt_map()
    {
        using var dir = new TempDir("bs-cbt");
        var image = dir.File("disk.raw");
        File.WriteAllBytes(image, new byte[Size]);
        await using var daemon = await DaemonProcess.StartAsync(dir.Path);
        (await Cli(daemon, "device", "add", "disk", image, "--track", "--track-block-size", "64K")).Ok("device add --track");
        (await Cli(daemon, "export", "add", "disk")).Ok("export add");
        await WriteAsync(daemon.Uri("disk"), 1, 0, 1 << 20);
        (await Cli(daemon, "snapshot", "create", "-d", "disk", "--storage", "memory", "--name", "full")).Ok("first snapshot");
        var period = (await Json(daemon, "cbt", "info", "disk"))["period"]!.GetValue<int>();
        Assert.Equal(2, period);
        // Changes of period 2: unaligned and scattered, plus a mark-dirty.
        await WriteAsync(daemon.Uri("disk"), 2, 3 << 20, 100_000);
        await WriteAsync(daemon.Uri("disk"), 3, (20 << 20) + 4096, 4096);
        (await Cli(daemon, "cbt", "mark-dirty", "disk", "--range", "30M:128K")).Ok("mark-dirty");
        (await Cli(daemon, "snapshot", "create", "-d", "disk", "--name", "incr")).Ok("second snapshot shares the storage");
        await WriteAsync(daemon.Uri("disk"), 4, 10 << 20, 1 << 20); // after the take: not in incr's bitmap

        var ranges = (await Cli(daemon, "cbt", "map", "disk", "--since", "1", "--output", "ranges")).Ok("cbt map").Stdout;
        var expected = Parse(ranges);
        Assert.Equal([(3L << 20, 128L << 10), (10L << 20, 1L << 20), (20L << 20, 64L << 10), (30L << 20, 128L << 10)], expected);

        (await Cli(daemon, "snapshot", "export", "incr", "-d", "disk", "-r")).Ok("export incr");
        var uri = daemon.Uri("disk.incr");
        var nbdinfo = (await Run.ToEndAsync("nbdinfo", ["--map=qemu:dirty-bitmap:blockshot-cbt", "--json", uri])).Ok("nbdinfo --map");
        var fromNbdinfo = JsonNode.Parse(nbdinfo.Stdout)!.AsArray()
            .Where(e => e!["type"]!.GetValue<int>() == 1).Select(e => (e!["offset"]!.GetValue<long>(), e["length"]!.GetValue<long>())).ToList();
        // The snapshot's bitmap: changes since the first snapshot, up to its own take (not the 10 MiB write after it).
        List<(long, long)> incr = [(3L << 20, 128L << 10), (20L << 20, 64L << 10), (30L << 20, 128L << 10)];
        Assert.Equal(incr, fromNbdinfo);

        var opts = $"driver=nbd,path={daemon.NbdSocket},export=disk.incr,x-dirty-bitmap=qemu:dirty-bitmap:blockshot-cbt";
        var map = (await Run.ToEndAsync("qemu-img", ["map", "--output=json", "--image-opts", opts])).Ok("qemu-img map");
        // With x-dirty-bitmap, qemu reports dirty blocks as data:false (the bitmap's bit is inverted into "hole").
        var fromQemu = JsonNode.Parse(map.Stdout)!.AsArray()
            .Where(e => !e!["data"]!.GetValue<bool>()).Select(e => (e!["start"]!.GetValue<long>(), e["length"]!.GetValue<long>())).ToList();
        Assert.Equal(incr, fromQemu);

        var info = await Json(daemon, "snapshot", "info", "incr");
        Assert.Equal(1, info["devices"]![0]!["cbt-since"]!.GetValue<int>());
        Assert.Equal(2, info["devices"]![0]!["cbt-period"]!.GetValue<int>());
        var json = await Json(daemon, "cbt", "map", "disk", "--since", "2");
        Assert.Equal(1L << 20, json["bytes"]!.GetValue<long>());
    }

    [RequiresToolsFact("fio")]
    public async Task After_kill_9_the_map_covers_every_block_that_changed_on_the_device()
    {
        var rounds = int.TryParse(Environment.GetEnvironmentVariable("BLOCKSHOT_CBT_KILL_ROUNDS"), CultureInfo.InvariantCulture, out var n) ? n : 10;
        using var dir = new TempDir("bs-cbt-kill");
        var image = dir.File("disk.raw");
        File.WriteAllBytes(image, new byte[Size]);
        var random = new Random(7);
        var kept = 0;
        for (var round = 0; round < rounds; round++)
        {
            var daemon = await DaemonProcess.StartAsync(dir.Path);
            JsonNode before;
            int since;
            try
            {
                (await Cli(daemon, "device", "add", "disk", image, "--track", "--track-block-size", "64K")).Ok("device add --track");
                (await Cli(daemon, "export", "add", "disk")).Ok("export add");
                // A snapshot ends the period; everything written after it is marked with the new one.
                (await Cli(daemon, "snapshot", "create", "-d", "disk", "--storage", "memory", "--name", "s")).Ok("snapshot");
                (await Cli(daemon, "snapshot", "destroy", "s")).Ok("destroy");
                before = await Json(daemon, "cbt", "info", "disk");
                since = before["period"]!.GetValue<int>() - 1;
                File.Copy(image, dir.File("before.raw"), overwrite: true);

                using var fio = Process.Start(Run.Info("fio", Fio.VerifyingWrites(daemon.Uri("disk"), "kill", Size, runtimeSeconds: 30, rate: "4m")))!;
                // However the round ends, fio must not outlive it.
                using var reaper = new ProcessReaper(fio);
                fio.StandardInput.Close();
                // Once fio's writes flow (marks in the new period), kill at a random point among them.
                var clock = Stopwatch.StartNew();
                while ((await Json(daemon, "cbt", "info", "disk"))["changed-in-period"]!.GetValue<long>() == 0)
                {
                    Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"round {round}: fio never wrote");
                    await Task.Delay(50);
                }
                await Task.Delay(TimeSpan.FromMilliseconds(random.Next(800)));
                Process.GetProcessById(daemon.Pid).Kill(); // SIGKILL, in the middle of fio's writes
                // fio's own result does not matter here (its server died); it must only be gone.
                await Task.WhenAny(fio.WaitForExitAsync(), Task.Delay(TimeSpan.FromSeconds(15)));
                if (!fio.HasExited)
                {
                    fio.Kill(entireProcessTree: true);
                    await fio.WaitForExitAsync();
                }
            }
            finally
            {
                await daemon.DisposeAsync();
            }

            var again = await DaemonProcess.StartAsync(dir.Path);
            try
            {
                (await Cli(again, "device", "add", "disk", image, "--track", "--track-block-size", "64K")).Ok("device add after kill");
                var after = await Json(again, "cbt", "info", "disk");
                var changed = ChangedBlocks(dir.File("before.raw"), image, 64 << 10);
                Assert.True(changed.Count > 0, $"round {round}: fio changed nothing before the kill; the round proved nothing");
                if (after["generation"]!.GetValue<string>() != before["generation"]!.GetValue<string>())
                {
                    continue; // a new generation (a full backup) is allowed when the map cannot be proven
                }
                kept++;
                var marked = Parse((await Cli(again, "cbt", "map", "disk", "--since", since.ToString(CultureInfo.InvariantCulture))).Ok("map").Stdout)
                    .SelectMany(r => Enumerable.Range((int)(r.Offset >> 16), (int)(r.Length >> 16))).ToHashSet();
                var missed = changed.Where(b => !marked.Contains(b)).ToList();
                Assert.True(missed.Count == 0, $"round {round}: blocks changed on the device but not in the map: {string.Join(", ", missed.Take(10))}");
                await Cli(again, "device", "remove", "disk", "--force");
            }
            finally
            {
                await again.DisposeAsync();
            }
        }
        Assert.True(kept >= rounds / 2, $"only {kept} of {rounds} restarts kept the generation; the superset check barely ran");
    }

    [RequiresToolsTheory("qemu-io", "qemu-img")]
    [InlineData("raw")]
    [InlineData("qcow2")]
    public async Task Device_resize_starts_a_new_generation_with_the_reason_in_cbt_info_and_an_event(string format)
    {
        using var dir = new TempDir("bs-cbt-resize");
        var image = dir.File("disk." + format);
        (await Run.ToEndAsync("qemu-img", ["create", "-q", "-f", format, image, Size.ToString(CultureInfo.InvariantCulture)])).Ok("qemu-img create");
        await using var daemon = await DaemonProcess.StartAsync(dir.Path);
        await using var events = await daemon.ClientAsync();
        await events.CallAsync("events.subscribe", new JsonObject { ["events"] = new JsonArray("cbt.generation", "device.resized") });
        (await Cli(daemon, "device", "add", "disk", image, "--track")).Ok("device add --track");
        (await Cli(daemon, "export", "add", "disk")).Ok("export add");
        await WriteAsync(daemon.Uri("disk"), 1, 1 << 20, 1 << 20);
        var before = await Json(daemon, "cbt", "info", "disk");
        Assert.Equal(16, before["changed-blocks"]!.GetValue<long>());

        const long Grown = Size + (16 << 20);
        var resized = await Json(daemon, "device", "resize", "disk", "48M");
        Assert.Equal(Grown, resized["size"]!.GetValue<long>());
        var after = await Json(daemon, "cbt", "info", "disk");
        Assert.NotEqual(before["generation"]!.GetValue<string>(), after["generation"]!.GetValue<string>());
        Assert.Equal($"the device was resized from {Size} to {Grown} bytes", after["generation-reason"]!.GetValue<string>());
        Assert.Equal(0, after["changed-blocks"]!.GetValue<long>());
        Assert.Equal(1, after["period"]!.GetValue<int>());

        var seen = new List<EventMessage>();
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        {
            while (!seen.Any(e => e.Event == "device.resized"))
            {
                Assert.True(await events.Events.WaitToReadAsync(cts.Token), "the event stream ended");
                while (events.Events.TryRead(out var e))
                {
                    seen.Add(e);
                }
            }
        }
        var generation = seen.Single(e => e.Event == "cbt.generation");
        Assert.Equal("disk", generation.Data["device"]!.GetValue<string>());
        Assert.Equal(after["generation"]!.GetValue<string>(), generation.Data["generation"]!.GetValue<string>());
        Assert.Equal(after["generation-reason"]!.GetValue<string>(), generation.Data["reason"]!.GetValue<string>());
        Assert.Equal(Grown, seen.Single(e => e.Event == "device.resized").Data["size"]!.GetValue<long>());

        // A new connection sees the new size; a write past the old end is tracked in the new map.
        await WriteAsync(daemon.Uri("disk"), 2, Size + (4 << 20), 64 << 10);
        var map = await Json(daemon, "cbt", "map", "disk", "--since", "0");
        Assert.Equal(Size + (4 << 20), map["ranges"]![0]!["offset"]!.GetValue<long>());
        Assert.Equal(64 << 10, map["bytes"]!.GetValue<long>());
        var imageInfo = JsonNode.Parse((await Run.ToEndAsync("qemu-img", ["info", "-U", "--output=json", image])).Ok("qemu-img info").Stdout)!;
        Assert.Equal(Grown, imageInfo["virtual-size"]!.GetValue<long>());

        // The sidecar recorded the new generation at the new size: a clean remove and add keeps it.
        (await Cli(daemon, "device", "remove", "disk", "--force")).Ok("device remove");
        (await Cli(daemon, "device", "add", "disk", image, "--track")).Ok("device add again");
        var again = await Json(daemon, "cbt", "info", "disk");
        Assert.Equal(after["generation"]!.GetValue<string>(), again["generation"]!.GetValue<string>());
        Assert.Equal(1, again["changed-blocks"]!.GetValue<long>());
    }

    [RequiresToolsFact("qemu-io", "nbdinfo")]
    public async Task A_reopened_persistent_snapshot_offers_the_changes_up_to_its_take_after_a_clean_stop_and_after_kill_9()
    {
        using var dir = new TempDir("bs-cbt-reopen");
        var image = dir.File("disk.raw");
        File.WriteAllBytes(image, new byte[Size]);
        List<(long, long)> full = [(0, 1L << 20)];
        List<(long, long)> incr = [(3L << 20, 128L << 10), (20L << 20, 64L << 10)];
        string generation;
        var daemon = await DaemonProcess.StartAsync(dir.Path);
        try
        {
            (await Cli(daemon, "device", "add", "disk", image, "--track")).Ok("device add --track");
            (await Cli(daemon, "export", "add", "disk")).Ok("export add");
            await WriteAsync(daemon.Uri("disk"), 1, 0, 1 << 20);
            (await Cli(daemon, "snapshot", "create", "-d", "disk", "--storage", $"file:{dir.File("diff")}", "--persistent", "--name", "full")).Ok("full");
            await WriteAsync(daemon.Uri("disk"), 2, 3 << 20, 100_000);
            await WriteAsync(daemon.Uri("disk"), 3, (20 << 20) + 4096, 4096);
            (await Cli(daemon, "snapshot", "create", "-d", "disk", "--persistent", "--name", "incr")).Ok("incr");
            // After the take: a new block (not incr's) and a block incr has (still incr's, though the live
            // map now shows it changed in the next period).
            await WriteAsync(daemon.Uri("disk"), 4, 10 << 20, 1 << 20);
            await WriteAsync(daemon.Uri("disk"), 5, 3 << 20, 4096);
            generation = (await Json(daemon, "cbt", "info", "disk"))["generation"]!.GetValue<string>();
            Assert.Equal(incr, await SnapshotBitmapAsync(daemon, "incr"));
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
                (await Cli(daemon, "device", "add", "disk", image, "--track")).Ok("device add again");
                Assert.Equal(generation, (await Json(daemon, "cbt", "info", "disk"))["generation"]!.GetValue<string>());
                var info = (await Json(daemon, "snapshot", "info", "incr"))["devices"]![0]!;
                Assert.Equal("exact", info["cbt-bitmap"]!.GetValue<string>());
                Assert.Equal(1, info["cbt-since"]!.GetValue<int>());
                Assert.Equal(2, info["cbt-period"]!.GetValue<int>());
                Assert.Equal(incr, await SnapshotBitmapAsync(daemon, "incr"));
                Assert.Equal(full, await SnapshotBitmapAsync(daemon, "full"));
                (await Cli(daemon, "export", "add", "disk")).Ok("export add again");
                await WriteAsync(daemon.Uri("disk"), 6 + round, 25 << 20, 64 << 10);
                if (round == 0)
                {
                    // Let the tracker vouch for the write (its heartbeat) so the kill -9 keeps the generation.
                    await Task.Delay(TimeSpan.FromSeconds(3));
                    await daemon.KillHardAsync();
                }
            }
            finally
            {
                await daemon.DisposeAsync();
            }
        }
    }

    [RequiresToolsFact("qemu-io", "nbdinfo")]
    public async Task A_writable_snapshot_bitmap_includes_the_blocks_written_through_its_image()
    {
        using var dir = new TempDir("bs-cbt-writable");
        var image = dir.File("disk.raw");
        File.WriteAllBytes(image, new byte[Size]);
        await using var daemon = await DaemonProcess.StartAsync(dir.Path);
        (await Cli(daemon, "device", "add", "disk", image, "--track")).Ok("device add --track");
        (await Cli(daemon, "export", "add", "disk")).Ok("export add");
        await WriteAsync(daemon.Uri("disk"), 1, 0, 1 << 20);
        (await Cli(daemon, "snapshot", "create", "-d", "disk", "--storage", "memory", "--name", "base")).Ok("base");
        await WriteAsync(daemon.Uri("disk"), 2, 5 << 20, 64 << 10);
        (await Cli(daemon, "snapshot", "create", "-d", "disk", "--writable", "--name", "w")).Ok("writable snapshot");
        Assert.Equal([(5L << 20, 64L << 10)], await SnapshotBitmapAsync(daemon, "w"));

        (await Cli(daemon, "snapshot", "export", "w", "-d", "disk")).Ok("export w writable");
        var uri = daemon.Uri("disk.w");
        await WriteAsync(uri, 3, (7 << 20) + 100, 70_000);   // blocks 112 and 113
        await WriteAsync(uri, 4, 12 << 20, 4096);             // block 192
        (await Run.ToEndAsync("qemu-io", ["-f", "raw", "-c", "read -P 3 7340132 70000", uri])).Ok("the image holds the write");
        var fromNbdinfo = await MapAsync(uri);
        Assert.Equal([(5L << 20, 64L << 10), (7L << 20, 128L << 10), (12L << 20, 64L << 10)], fromNbdinfo);
        // The device's own map counts them too (the image now differs from the previous backup there).
        var live = Parse((await Cli(daemon, "cbt", "map", "disk", "--since", "1", "--output", "ranges")).Ok("cbt map").Stdout);
        Assert.Equal([(5L << 20, 64L << 10), (7L << 20, 128L << 10), (12L << 20, 64L << 10)], live);
        // The read-only base snapshot is not affected.
        Assert.Equal([(0L, 1L << 20)], await SnapshotBitmapAsync(daemon, "base"));
    }

    [RequiresToolsFact("qemu-img", "qemu-io", "qemu-nbd", "nbdinfo")]
    public async Task A_qcow2_image_keeps_the_generation_in_a_persistent_bitmap_that_qemu_reads_after_a_clean_stop_and_after_kill_9()
    {
        using var dir = new TempDir("bs-cbt-qcow2");
        var image = dir.File("vm.qcow2");
        (await Run.ToEndAsync("qemu-img", ["create", "-q", "-f", "qcow2", image, Size.ToString(CultureInfo.InvariantCulture)])).Ok("qemu-img create");
        string generation;
        List<(long, long)> changed;
        var daemon = await DaemonProcess.StartAsync(dir.Path);
        try
        {
            (await Cli(daemon, "device", "add", "vm", image, "--track", "--track-store", "qcow2-bitmap")).Ok("device add --track-store qcow2-bitmap");
            var info = await Json(daemon, "cbt", "info", "vm");
            Assert.Equal("blockshot-cbt", info["qcow2-bitmap"]!.GetValue<string>());
            generation = info["generation"]!.GetValue<string>();
            (await Cli(daemon, "export", "add", "vm")).Ok("export add");
            await WriteAsync(daemon.Uri("vm"), 1, 0, 1 << 20);
            await WriteAsync(daemon.Uri("vm"), 2, (5 << 20) + 100, 70_000);
            changed = await CbtMapAsync(daemon, "vm");
            Assert.Equal([(0L, 1L << 20), (5L << 20, 128L << 10)], changed);
            // The device's export offers the image's bitmap as the qcow2 driver keeps it: the same blocks.
            Assert.Equal(changed, await MapAsync(daemon.Uri("vm")));
            Assert.Equal(0, await daemon.TerminateAsync());
        }
        finally
        {
            await daemon.DisposeAsync();
        }
        Assert.Equal(["auto"], await BitmapFlagsAsync(image));
        Assert.Equal(changed, await QemuNbdBitmapAsync(dir, image));

        // Kill -9 with the image open: qemu sees the bitmap in use; the reopen proves the map from the
        // sidecar (or starts a new generation and says why) and rebuilds the image's bitmap from it.
        daemon = await DaemonProcess.StartAsync(dir.Path);
        try
        {
            (await Cli(daemon, "device", "add", "vm", image, "--track", "--track-store", "qcow2-bitmap")).Ok("device add again");
            Assert.Equal(generation, (await Json(daemon, "cbt", "info", "vm"))["generation"]!.GetValue<string>());
            (await Cli(daemon, "export", "add", "vm")).Ok("export add again");
            await WriteAsync(daemon.Uri("vm"), 3, 10 << 20, 1 << 20);
            await Task.Delay(TimeSpan.FromSeconds(3)); // the tracker's heartbeat vouches for the write
            await daemon.KillHardAsync();
        }
        finally
        {
            await daemon.DisposeAsync();
        }
        Assert.Contains("in-use", await BitmapFlagsAsync(image));
        daemon = await DaemonProcess.StartAsync(dir.Path);
        try
        {
            (await Cli(daemon, "device", "add", "vm", image, "--track", "--track-store", "qcow2-bitmap")).Ok("device add after kill");
            var info = await Json(daemon, "cbt", "info", "vm");
            changed = await CbtMapAsync(daemon, "vm");
            if (info["generation"]!.GetValue<string>() == generation)
            {
                // The clean stop saved the first two ranges exactly; the write made before the kill comes back
                // as its whole 4 MiB durable region (8-12 MiB), a superset of the 1 MiB written.
                Assert.Equal([(0L, 1L << 20), (5L << 20, 128L << 10), (8L << 20, 4L << 20)], changed);
            }
            else
            {
                Assert.Contains("uncleanly", info["generation-reason"]!.GetValue<string>());
                Assert.Empty(changed);
            }
            Assert.Equal(0, await daemon.TerminateAsync());
        }
        finally
        {
            await daemon.DisposeAsync();
        }
        Assert.Equal(["auto"], await BitmapFlagsAsync(image));
        Assert.Equal(changed, await QemuNbdBitmapAsync(dir, image));
        (await Run.ToEndAsync("qemu-img", ["check", image])).Ok("qemu-img check");
    }

    private static async Task<List<(long, long)>> CbtMapAsync(DaemonProcess daemon, string device) =>
        Parse((await Cli(daemon, "cbt", "map", device, "--since", "0", "--output", "ranges")).Ok("cbt map").Stdout)
            .Select(r => (r.Offset, r.Length)).ToList();

    private static async Task<List<string>> BitmapFlagsAsync(string image)
    {
        var info = JsonNode.Parse((await Run.ToEndAsync("qemu-img", ["info", "-U", "--output=json", image])).Ok("qemu-img info").Stdout)!;
        var bitmap = info["format-specific"]!["data"]!["bitmaps"]!.AsArray().Single(b => b!["name"]!.GetValue<string>() == "blockshot-cbt")!;
        Assert.Equal(64 << 10, bitmap["granularity"]!.GetValue<long>());
        return [.. bitmap["flags"]!.AsArray().Select(f => f!.GetValue<string>())];
    }

    // The image's bitmap as qemu-nbd exports it (-B), read with nbdinfo.
    private static async Task<List<(long, long)>> QemuNbdBitmapAsync(TempDir dir, string image)
    {
        var socket = dir.File("qemu-nbd.sock");
        using var server = Process.Start(Run.Info("qemu-nbd", ["-r", "-f", "qcow2", "-B", "blockshot-cbt", "-k", socket, image]))!;
        try
        {
            var clock = Stopwatch.StartNew();
            while (!File.Exists(socket))
            {
                Assert.False(server.HasExited, "qemu-nbd exited");
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), "qemu-nbd did not listen");
                await Task.Delay(50);
            }
            return await MapAsync($"nbd+unix:///?socket={socket}");
        }
        finally
        {
            if (!server.HasExited)
            {
                server.Kill(entireProcessTree: true);
            }
            await server.WaitForExitAsync();
        }
    }

    // Exports a device's snapshot read-only under a fresh name and reads its dirty bitmap with nbdinfo.
    private static async Task<List<(long, long)>> SnapshotBitmapAsync(DaemonProcess daemon, string snapshot)
    {
        var name = $"{snapshot}-map-{Guid.NewGuid():N}";
        (await Cli(daemon, "snapshot", "export", snapshot, "-d", "disk", "-r", "--name", name)).Ok("snapshot export " + snapshot);
        try
        {
            return await MapAsync(daemon.Uri(name));
        }
        finally
        {
            (await Cli(daemon, "export", "remove", name)).Ok("export remove " + name);
        }
    }

    private static async Task<List<(long, long)>> MapAsync(string uri)
    {
        var nbdinfo = (await Run.ToEndAsync("nbdinfo", ["--map=qemu:dirty-bitmap:blockshot-cbt", "--json", uri])).Ok("nbdinfo --map");
        return [.. JsonNode.Parse(nbdinfo.Stdout)!.AsArray()
            .Where(e => e!["type"]!.GetValue<int>() == 1).Select(e => (e!["offset"]!.GetValue<long>(), e["length"]!.GetValue<long>()))];
    }

    private static List<(long Offset, long Length)> Parse(string ranges) =>
        [.. ranges.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(':')).Select(p => (long.Parse(p[0], CultureInfo.InvariantCulture), long.Parse(p[1], CultureInfo.InvariantCulture)))];

    private static List<int> ChangedBlocks(string a, string b, int blockSize)
    {
        using var fa = File.OpenRead(a);
        using var fb = File.OpenRead(b);
        var ba = new byte[blockSize];
        var bb = new byte[blockSize];
        var changed = new List<int>();
        for (var block = 0; fa.Read(ba) > 0; block++)
        {
            fb.ReadExactly(bb);
            if (!ba.AsSpan().SequenceEqual(bb))
            {
                changed.Add(block);
            }
        }
        return changed;
    }

    /// <summary>Kills a child process tree on dispose unless it has exited.</summary>
    private sealed class ProcessReaper(Process process) : IDisposable
    {
        public void Dispose()
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(10_000);
            }
        }
    }
}
