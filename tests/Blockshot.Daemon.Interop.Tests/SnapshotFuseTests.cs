using Blockshot.Fuse;
using static Blockshot.Daemon.Interop.Tests.Mounts;
using static Blockshot.Daemon.Interop.Tests.SnapshotCli;

namespace Blockshot.Daemon.Interop.Tests;

/// <summary>Snapshot exports over FUSE (+ loop) of the daemon process: exact take-time bytes, refusals, and no leftovers after SIGKILL.</summary>
public class SnapshotFuseTests
{
    private const int Size = 16 << 20;

    [RequiresRootFact("/dev/fuse", "losetup", "cmp")]
    public async Task A_read_only_fuse_snapshot_export_reads_the_take_time_bytes_while_the_origin_is_overwritten()
    {
        using var dir = new TempDir("bs-snapfuse-ro");
        var image = dir.File("disk.raw");
        File.WriteAllBytes(image, Patterns.Make(Size, 0, 5));
        var originFile = dir.File("disk.img");
        var snapFile = dir.File("disk.snap.img");
        var daemon = await DaemonProcess.StartAsync(dir.Path);
        using var stop = new CancellationTokenSource();
        Task<long>? overwriter = null;
        try
        {
            (await Cli(daemon, "device", "add", "disk", image)).Ok("device add");
            (await Cli(daemon, "export", "add", "disk", "--type", "fuse", "--path", originFile)).Ok("export add --type fuse");
            File.Copy(image, dir.File("at-take.raw"));
            (await Cli(daemon, "snapshot", "create", "-d", "disk", "--storage", "memory", "--name", "s")).Ok("snapshot create");

            var passes = 0L;
            overwriter = Task.Run(() => Overwrite(originFile, ref passes, stop.Token));
            var loop = SnapshotFuseExt4Tests.LoopOf(
                await Cli(daemon, "snapshot", "export", "s", "-d", "disk", "-r", "--type", "fuse", "--path", snapFile, "--loop"), "snapshot export -r --type fuse");
            var info = (await Json(daemon, "export", "list")).AsArray().Single(e => e!["name"]!.GetValue<string>() == "disk.s")!;
            Assert.Equal("fuse", info["type"]!.GetValue<string>());
            Assert.True(info["read-only"]!.GetValue<bool>());
            Assert.Equal(loop, info["loop-device"]!.GetValue<string>());
            Assert.Equal(snapFile, info["path"]!.GetValue<string>());

            // Read while the origin changes under the snapshot: at least one whole pass has been written before.
            while (Interlocked.Read(ref passes) < 1)
            {
                Assert.False(overwriter.IsCompleted, "the overwriter stopped");
                await Task.Delay(20);
            }
            foreach (var target in new[] { snapFile, loop })
            {
                var same = await Run.ToEndAsync("cmp", [dir.File("at-take.raw"), target]);
                Assert.True(same.ExitCode == 0, $"{target} differs from the device at the take: {same.Stdout} {same.Stderr}");
            }
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead, File.GetUnixFileMode(snapFile));
            Assert.ThrowsAny<IOException>(() => File.OpenHandle(snapFile, FileMode.Open, FileAccess.ReadWrite).Dispose());
            Assert.False(overwriter.IsCompleted, "the overwriter stopped before the reads were done");
            await stop.CancelAsync();
            Assert.True(await overwriter > 0);
            var moved = await Run.ToEndAsync("cmp", ["-s", dir.File("at-take.raw"), image]);
            Assert.True(moved.ExitCode == 1, "the origin was overwritten, so it must differ from the copy at the take");

            // NBD-only and FUSE-only options are refused before the daemon is asked.
            var mixed = await Cli(daemon, "snapshot", "export", "s", "-d", "disk", "--loop");
            Assert.Equal(2, mixed.ExitCode);
            Assert.Contains("--path and --loop apply to --type fuse only", mixed.Stderr);
            var bitmap = await Cli(daemon, "snapshot", "export", "s", "-d", "disk", "--type", "fuse", "--path", dir.File("x.img"), "--bitmap", "b");
            Assert.Equal(2, bitmap.ExitCode);
            Assert.Contains("--bitmap applies to --type nbd only", bitmap.Stderr);

            (await Cli(daemon, "snapshot", "destroy", "s", "--force")).Ok("snapshot destroy --force");
            Assert.False(MountedAt(snapFile), "destroy --force left the snapshot's file mounted");
            Assert.Empty(LoopDevice.FindByBackingFile(snapFile));
            Assert.True(MountedAt(originFile), "destroying the snapshot took the device's own export away");
            Assert.Equal(0, await daemon.TerminateAsync());
        }
        finally
        {
            await stop.CancelAsync();
            if (overwriter is not null)
            {
                await overwriter.ContinueWith(_ => { }, TaskScheduler.Default); // its outcome is asserted above when it matters
            }
            await daemon.DisposeAsync();
            CleanupFuse(originFile, snapFile);
        }
    }

    [RequiresRootFact("/dev/fuse", "losetup")]
    public async Task A_daemon_killed_with_a_fuse_snapshot_export_leaves_no_mount_or_loop_device_after_a_restart()
    {
        using var dir = new TempDir("bs-snapfuse-kill");
        var image = dir.File("disk.raw");
        File.WriteAllBytes(image, Patterns.Make(Size, 0, 6));
        var snapFile = dir.File("disk.snap.img");
        try
        {
            string loop;
            var daemon = await DaemonProcess.StartAsync(dir.Path);
            await using (daemon)
            {
                (await Cli(daemon, "device", "add", "disk", image)).Ok("device add");
                (await Cli(daemon, "snapshot", "create", "-d", "disk", "--storage", "memory", "--writable", "--name", "s")).Ok("snapshot create");
                loop = SnapshotFuseExt4Tests.LoopOf(
                    await Cli(daemon, "snapshot", "export", "s", "-d", "disk", "--type", "fuse", "--path", snapFile, "--loop"), "snapshot export --type fuse");
                // Writable: what goes in through the loop device comes back, and never reaches the image.
                using (var handle = File.OpenHandle(loop, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, FileOptions.WriteThrough))
                {
                    RandomAccess.Write(handle, Patterns.Make(65536, 0, 99), 0);
                    var back = new byte[65536];
                    Assert.Equal(back.Length, RandomAccess.Read(handle, back, 0));
                    Assert.Equal(Patterns.Make(65536, 0, 99), back);
                }
                Assert.Equal(Patterns.Make(Size, 0, 6), await File.ReadAllBytesAsync(image));
                Assert.Contains(loop, LoopDevice.FindByBackingFile(snapFile));
                await daemon.KillHardAsync();
            }
            Assert.True(MountedAt(snapFile), "after SIGKILL the mount should still be there (stale) for this test to mean anything");

            await using var again = await DaemonProcess.StartAsync(dir.Path);
            Assert.False(MountedAt(snapFile), $"a mount of {snapFile} survived the restart: {again.Stderr}");
            Assert.Empty(LoopDevice.FindByBackingFile(snapFile));
            Assert.False(File.Exists(snapFile), "the mountpoint file the killed daemon created is still there");
            Assert.Contains("cleaned up after a previous run", again.Stderr);
            Assert.Equal(0, await again.TerminateAsync());
        }
        finally
        {
            CleanupFuse(snapFile);
        }
    }

    /// <summary>Writes passes of changing data over the whole file until cancelled; returns the bytes written.</summary>
    private static long Overwrite(string file, ref long passes, CancellationToken cancellationToken)
    {
        using var handle = File.OpenHandle(file, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
        var written = 0L;
        for (var pass = 0; !cancellationToken.IsCancellationRequested; pass++)
        {
            for (var offset = 0; offset < Size && !cancellationToken.IsCancellationRequested; offset += 1 << 20)
            {
                RandomAccess.Write(handle, Patterns.Make(1 << 20, offset, 200 + pass), offset);
                written += 1 << 20;
            }
            RandomAccess.FlushToDisk(handle);
            Interlocked.Increment(ref passes);
        }
        return written;
    }
}
