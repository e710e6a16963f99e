using System.Text.Json;

namespace Blockshot.Interop.Tests;

/// <summary>`blockshot serve` as a user runs it, next to qemu-nbd on the same files.</summary>
public class ServeTests
{
    private static string SparseFile(string path, long size, int seed)
    {
        using var f = File.Open(path, FileMode.Create, FileAccess.ReadWrite);
        f.SetLength(size);
        var rng = new Random(seed);
        for (var i = 0; i < 12; i++)
        {
            var length = rng.Next(1, 2 << 20);
            var offset = rng.NextInt64(0, size - length);
            f.Position = offset;
            f.Write(Patterns.Make(length, offset, i + seed));
        }
        return path;
    }

    private static List<(long Offset, long Length, int Type)> Map(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.EnumerateArray()
            .Select(e => (e.GetProperty("offset").GetInt64(), e.GetProperty("length").GetInt64(), e.GetProperty("type").GetInt32()))
            .ToList();
    }

    [RequiresToolsFact("nbdinfo", "qemu-nbd")]
    public async Task Map_of_a_sparse_file_matches_what_qemu_nbd_reports()
    {
        using var dir = new TempDir();
        var image = SparseFile(dir.File("sparse.raw"), 96 << 20, 3);
        await using var ours = await ServedImage.BlockshotAsync(dir.File("ours.sock"), image, "-f", "raw", "--read-only");
        await using var peer = await ServedImage.QemuNbdAsync(dir.File("peer.sock"), "-f", "raw", "-r", "--shared=4", image);
        var a = (await Run.ToEndAsync("nbdinfo", ["--map", "--json", ours.Uri()])).Ok("nbdinfo ours");
        var b = (await Run.ToEndAsync("nbdinfo", ["--map", "--json", peer.Uri()])).Ok("nbdinfo qemu-nbd");
        var ourMap = Map(a.Stdout);
        Assert.True(ourMap.Count > 3, "expected several extents");
        Assert.Equal(Map(b.Stdout), ourMap);
    }

    [RequiresToolsFact("nbdinfo")]
    public async Task Nbdinfo_starts_serve_through_socket_activation()
    {
        using var dir = new TempDir();
        var image = SparseFile(dir.File("disk.raw"), 32 << 20, 4);
        var r = (await Run.ToEndAsync("nbdinfo", ["--json", "--", "[", Repo.Launcher, "serve", "-f", "raw", image, "]"])).Ok("nbdinfo [ blockshot serve ]");
        using var doc = JsonDocument.Parse(r.Stdout);
        var export = doc.RootElement.GetProperty("exports")[0];
        Assert.Equal(32 << 20, export.GetProperty("export-size").GetInt64());
        Assert.Equal("", export.GetProperty("export-name").GetString());
    }

    [RequiresToolsFact("qemu-img", "qemu-io")]
    public async Task Served_file_converts_to_qcow2_and_compares_identical_then_sigterm_keeps_writes()
    {
        using var dir = new TempDir();
        var image = SparseFile(dir.File("disk.raw"), 48 << 20, 5);
        var served = await ServedImage.BlockshotAsync(dir.File("s.sock"), image, "-f", "raw", "--name", "disk");
        await using (served)
        {
            (await Run.ToEndAsync("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", served.Uri("disk"), dir.File("copy.qcow2")])).Ok("convert");
            (await Run.ToEndAsync("qemu-img", ["compare", "-U", "-f", "raw", "-F", "qcow2", image, dir.File("copy.qcow2")])).Ok("compare");
            (await Run.ToEndAsync("qemu-io", ["-f", "raw", "-c", "write -P 0x3c 40M 1M", served.Uri("disk")])).Ok("qemu-io write");
            var (code, stderr) = await served.TerminateAsync();
            Assert.True(code == 0, $"serve exited {code} on SIGTERM: {stderr}");
        }
        var bytes = new byte[1 << 20];
        using (var f = File.OpenRead(image))
        {
            f.Position = 40 << 20;
            f.ReadExactly(bytes);
        }
        Assert.True(bytes.All(b => b == 0x3c), "write acknowledged before SIGTERM is not in the file");
    }

    [RequiresToolsFact("qemu-io")]
    public async Task Read_only_serve_refuses_writes()
    {
        using var dir = new TempDir();
        var image = SparseFile(dir.File("disk.raw"), 8 << 20, 6);
        await using var served = await ServedImage.BlockshotAsync(dir.File("s.sock"), image, "--read-only");
        // qemu-io sees the read-only flag and refuses a read-write open; a read-only open reads fine.
        var rw = await Run.ToEndAsync("qemu-io", ["-f", "raw", "-c", "write 0 4k", served.Uri()]);
        Assert.NotEqual(0, rw.ExitCode);
        Assert.Matches("(?i)permission denied|read-only|read only", rw.Stdout + rw.Stderr);
        var ro = (await Run.ToEndAsync("qemu-io", ["-r", "-f", "raw", "-c", "read 0 4k", served.Uri()])).Ok("qemu-io -r");
        Assert.Contains("read 4096/4096", ro.Stdout);
    }

    [RequiresToolsFact("qemu-nbd")]
    public async Task Serving_an_image_another_writer_holds_fails_with_the_locked_exit_code()
    {
        using var dir = new TempDir();
        var image = SparseFile(dir.File("disk.raw"), 8 << 20, 7);
        await using var peer = await ServedImage.QemuNbdAsync(dir.File("peer.sock"), "-f", "raw", image);
        var r = await Run.BlockshotAsync("serve", image, "--socket", dir.File("ours.sock"));
        Assert.Equal(4, r.ExitCode);
        Assert.Contains("lock", r.Stderr, StringComparison.OrdinalIgnoreCase);

        // Our writer keeps qemu-io's writer out too.
        await peer.DisposeAsync();
        await using var ours = await ServedImage.BlockshotAsync(dir.File("ours2.sock"), image);
        if (Tools.Find("qemu-io") is not null)
        {
            var q = await Run.ToEndAsync("qemu-io", ["-f", "raw", "-c", "write 0 512", image]);
            Assert.NotEqual(0, q.ExitCode);
            Assert.Contains("lock", q.Stderr + q.Stdout, StringComparison.OrdinalIgnoreCase);
        }
    }

    [Fact]
    public async Task Wrong_arguments_and_missing_files_get_documented_exit_codes()
    {
        using var dir = new TempDir();
        var missing = await Run.BlockshotAsync("serve", dir.File("nope.raw"), "--socket", dir.File("s.sock"));
        Assert.Equal(3, missing.ExitCode);
        Assert.Contains("nope.raw", missing.Stderr);

        var both = await Run.BlockshotAsync("serve", dir.File("nope.raw"), "--socket", "x", "--port", "1");
        Assert.True(both.ExitCode == 2, $"exit {both.ExitCode}: {both.Stderr}");
        Assert.Contains("cannot be used together", both.Stderr);

        var unknown = await Run.BlockshotAsync("serve", "--frobnicate");
        Assert.Equal(2, unknown.ExitCode);

        var badFormat = await Run.BlockshotAsync("serve", "-f", "vmdk", dir.File("x"));
        Assert.Equal(2, badFormat.ExitCode);

        var help = await Run.BlockshotAsync("serve", "--help");
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("--socket", help.Stdout);

        var version = await Run.BlockshotAsync("--version");
        Assert.Equal(0, version.ExitCode);
        Assert.Matches(@"^\d+\.\d+\.\d+", version.Stdout.Trim());
    }

    [Fact]
    public async Task Demo_runs_the_backup_main_job_end_to_end_and_removes_its_directory()
    {
        var r = (await Run.BlockshotAsync("demo", "--size", "256M")).Ok("demo");
        Assert.Contains("started the daemon in this process", r.Stdout);
        Assert.Contains("added device 'disk' with changed-block tracking", r.Stdout);
        Assert.Contains("identical", r.Stdout);
        Assert.Contains("hole, reads as zero", r.Stdout);
        Assert.Contains("snapshot verified: 'full' reads the take-time data", r.Stdout);
        Assert.Contains("full backup verified: copied 'disk.full'", r.Stdout);
        Assert.Contains("dirty bitmap verified: exactly the 64.0 KiB blocks written since 'full' (5 runs, ", r.Stdout);
        Assert.Contains("cbt map --since 1 agrees", r.Stdout);
        Assert.Contains("incremental backup verified:", r.Stdout);
        Assert.Contains("equals snapshot 'incr1'", r.Stdout);
        Assert.Contains("destroyed 'incr1' and stopped the daemon", r.Stdout);
        var removed = r.Stdout[(r.Stdout.IndexOf("; removed ", StringComparison.Ordinal) + "; removed ".Length)..].Trim();
        Assert.StartsWith(Path.GetTempPath().TrimEnd('/'), removed);
        Assert.False(Directory.Exists(removed), $"the demo left {removed}");
    }

    [RequiresToolsFact("qemu-img", "nbdinfo")]
    public async Task Demo_keeps_its_backups_and_qemu_img_finds_the_restored_incremental_equal_to_the_disk()
    {
        using var tmp = new TempDir();
        var dir = tmp.File("demo");
        var r = (await Run.BlockshotAsync("demo", "--size", "256M", "--dir", dir, "--keep")).Ok("demo");
        Assert.Contains("qemu-img compare of the restored backup and 'disk.incr1': Images are identical.", r.Stdout);
        Assert.Contains("nbdinfo --map=qemu:dirty-bitmap:blockshot-cbt of 'disk.incr1'", r.Stdout);
        Assert.Contains($"kept {dir}", r.Stdout);

        var disk = Path.Combine(dir, "disk.raw");
        var full = Path.Combine(dir, "full.qcow2");
        var restored = Path.Combine(dir, "restored-incr1.qcow2");
        (await Run.ToEndAsync("qemu-img", ["check", full])).Ok("qemu-img check of the full backup");
        (await Run.ToEndAsync("qemu-img", ["check", restored])).Ok("qemu-img check of the restored incremental");
        // Nothing was written after 'incr1': the restored backup is the disk; the full backup predates later writes.
        (await Run.ToEndAsync("qemu-img", ["compare", "-f", "qcow2", "-F", "raw", restored, disk])).Ok("compare restored with the disk");
        var stale = await Run.ToEndAsync("qemu-img", ["compare", "-f", "qcow2", "-F", "raw", full, disk]);
        Assert.True(stale.ExitCode == 1, $"qemu-img compare of the full backup and the disk exited {stale.ExitCode}: {stale.Stdout}{stale.Stderr}");
    }
}
