using System.Diagnostics;
using Blockshot.Fuse;
using static Blockshot.Daemon.Interop.Tests.Mounts;

namespace Blockshot.Daemon.Interop.Tests;

/// <summary>
/// FUSE exports of the daemon process, driven by the CLI: a SIGKILL and a restart leave no stuck mount or
/// loop device, ext4 on the daemon's loop device checks clean, and a reader killed mid-I/O hurts nothing.
/// </summary>
public class FuseInteropTests
{
    [RequiresRootFact("losetup")]
    public async Task A_daemon_killed_with_sigkill_leaves_no_mount_or_loop_device_after_a_restart()
    {
        using var dir = new TempDir("bs-fuse-kill");
        var image = Path.Combine(dir.Path, "k.raw");
        File.WriteAllBytes(image, Patterns.Make(8 << 20, 0, 21));
        var file = Path.Combine(dir.Path, "k.img");
        try
        {
            var daemon = await DaemonProcess.StartAsync(dir.Path);
            string loop;
            await using (daemon)
            {
                loop = await AddFuseExportAsync(daemon, image, file);
                Assert.Contains(loop, LoopDevice.FindByBackingFile(file));
                Assert.True(File.Exists(Path.Combine(dir.Path, "control.fuse-mounts.json")), "the daemon did not record its mount");
                await daemon.KillHardAsync();
            }
            Assert.True(MountedAt(file), "after SIGKILL the mount should still be there (stale) for this test to mean anything");

            await using var again = await DaemonProcess.StartAsync(dir.Path);
            Assert.False(MountedAt(file), $"a mount of {file} survived the restart: {again.Stderr}");
            Assert.Empty(LoopDevice.FindByBackingFile(file));
            Assert.False(File.Exists(Path.Combine(dir.Path, "control.fuse-mounts.json")), "the restart kept the old mount record");
            Assert.Contains("cleaned up after a previous run", again.Stderr);

            var second = await AddFuseExportAsync(again, image, file);
            using (var device = File.OpenHandle(second, FileMode.Open, FileAccess.Read))
            {
                var head = new byte[65536];
                Assert.Equal(head.Length, RandomAccess.Read(device, head, 0));
                Assert.Equal(Patterns.Make(head.Length, 0, 21), head);
            }
            Assert.Equal(0, await again.TerminateAsync());
            Assert.False(MountedAt(file), "SIGTERM left the file mounted");
            Assert.Empty(LoopDevice.FindByBackingFile(file));
        }
        finally
        {
            FuseMount.CleanupStale(file);
            LoopDevice.DetachByBackingFile(file);
        }
    }

    [RequiresRootFact("mkfs.ext4", "fsck.ext4", "mount", "umount", "losetup")]
    public async Task Ext4_on_the_daemons_loop_device_mounts_takes_files_through_a_filter_swap_and_checks_clean()
    {
        using var dir = new TempDir("bs-fuse-ext4");
        var image = Path.Combine(dir.Path, "e.raw");
        File.WriteAllBytes(image, new byte[64 << 20]);
        var file = Path.Combine(dir.Path, "e.img");
        var mnt = Directory.CreateDirectory(Path.Combine(dir.Path, "mnt")).FullName;
        var daemon = await DaemonProcess.StartAsync(dir.Path);
        var env = new Dictionary<string, string> { ["BLOCKSHOT_CONTROL"] = daemon.Control };
        var mounted = false;
        try
        {
            var loop = await AddFuseExportAsync(daemon, image, file);
            (await Run.ToEndAsync("mkfs.ext4", ["-q", "-F", loop])).Ok("mkfs.ext4");
            (await Run.ToEndAsync("mount", [loop, mnt])).Ok("mount");
            mounted = true;
            for (var i = 0; i < 8; i++)
            {
                if (i == 4)
                {
                    // A filter goes in under the mounted filesystem, and comes out again, while files are written.
                    (await Run.ToEndAsync(Repo.Launcher, ["filter", "insert", "e", "throttle"], environment: env)).Ok("filter insert");
                }
                await File.WriteAllBytesAsync(Path.Combine(mnt, $"f{i}"), Patterns.Make(1 << 20, i, 40 + i));
            }
            (await Run.ToEndAsync(Repo.Launcher, ["filter", "remove", "e", "throttle"], environment: env)).Ok("filter remove");
            (await Run.ToEndAsync("umount", [mnt])).Ok("umount");
            mounted = false;
            (await Run.ToEndAsync("fsck.ext4", ["-f", "-n", loop])).Ok("fsck.ext4 -f -n on the loop device");

            (await Run.ToEndAsync(Repo.Launcher, ["device", "remove", "e", "--force"], environment: env)).Ok("device remove --force");
            Assert.False(MountedAt(file));
            Assert.Empty(LoopDevice.FindByBackingFile(file));
            // What the filesystem wrote reached the image itself.
            (await Run.ToEndAsync("fsck.ext4", ["-f", "-n", image])).Ok("fsck.ext4 -f -n on the image");
            (await Run.ToEndAsync("mount", ["-o", "ro,loop", image, mnt])).Ok("mount the image");
            mounted = true;
            for (var i = 0; i < 8; i++)
            {
                Assert.Equal(Patterns.Make(1 << 20, i, 40 + i), await File.ReadAllBytesAsync(Path.Combine(mnt, $"f{i}")));
            }
        }
        finally
        {
            if (mounted)
            {
                await Run.ToEndAsync("umount", [mnt]);
            }
            await daemon.DisposeAsync();
            FuseMount.CleanupStale(file);
            LoopDevice.DetachByBackingFile(file);
        }
    }

    [RequiresRootFact("dd", "losetup")]
    public async Task A_reader_killed_mid_io_leaves_the_daemons_fuse_export_serving()
    {
        using var dir = new TempDir("bs-fuse-reader");
        var image = Path.Combine(dir.Path, "r.raw");
        File.WriteAllBytes(image, new byte[512 << 20]);
        var file = Path.Combine(dir.Path, "r.img");
        var daemon = await DaemonProcess.StartAsync(dir.Path);
        try
        {
            var loop = await AddFuseExportAsync(daemon, image, file);
            foreach (var target in new[] { file, loop })
            {
                using var reader = Process.Start(Run.Info("dd", [$"if={target}", "of=/dev/null", "bs=64k", "iflag=direct"]))!;
                using var writer = Process.Start(Run.Info("dd", ["if=/dev/zero", $"of={target}", "bs=64k", "oflag=direct", "conv=notrunc"]))!;
                await Task.Delay(200);
                Assert.False(reader.HasExited, "dd finished before it could be killed; make the image bigger");
                reader.Kill();
                writer.Kill();
                await reader.WaitForExitAsync();
                await writer.WaitForExitAsync();

                using var handle = File.OpenHandle(file, FileMode.Open, FileAccess.ReadWrite);
                var data = Patterns.Make(65536, 4096, 7);
                RandomAccess.Write(handle, data, 4096);
                var back = new byte[65536];
                Assert.Equal(back.Length, RandomAccess.Read(handle, back, 4096));
                Assert.Equal(data, back);
            }
            Assert.False(daemon.HasExited);
            var listed = JsonNode.Parse((await Run.ToEndAsync(Repo.Launcher, ["--control", daemon.Control, "-o", "json", "export", "list"])).Ok("export list").Stdout)!;
            Assert.Equal(loop, listed[0]!["loop-device"]!.GetValue<string>());
            Assert.Equal(1, listed[0]!["clients"]!.GetValue<int>()); // the loop device; the killed readers let go
            Assert.Equal(0, await daemon.TerminateAsync());
        }
        finally
        {
            await daemon.DisposeAsync(); // killed if still running: the cleanup below takes what it left
            FuseMount.CleanupStale(file);
            LoopDevice.DetachByBackingFile(file);
        }
    }

    /// <summary>Adds device (named after the image) and a FUSE export with a loop device through the CLI; returns /dev/loopN.</summary>
    private static async Task<string> AddFuseExportAsync(DaemonProcess daemon, string image, string file)
    {
        var env = new Dictionary<string, string> { ["BLOCKSHOT_CONTROL"] = daemon.Control };
        var device = Path.GetFileNameWithoutExtension(image);
        (await Run.ToEndAsync(Repo.Launcher, ["device", "add", device, image], environment: env)).Ok("device add");
        var added = (await Run.ToEndAsync(Repo.Launcher, ["export", "add", device, "--type", "fuse", "--path", file, "--loop"], environment: env))
            .Ok("export add --type fuse");
        Assert.Contains(file, added.Stderr);
        var printed = added.Stdout.Trim();
        Assert.Matches(@"^/dev/loop\d+$", printed);
        var table = (await Run.ToEndAsync(Repo.Launcher, ["export", "list"], environment: env)).Ok("export list").Stdout;
        var loop = System.Text.RegularExpressions.Regex.Match(table, @"\(loop device (/dev/loop\d+)\)").Groups[1].Value;
        Assert.True(loop.Length > 0, $"export list shows no loop device: {table}");
        Assert.Equal(printed, loop);
        Assert.Contains($"{device} ", table);
        Assert.True(MountedAt(file), $"{file} is not mounted after export add");
        return loop;
    }
}
