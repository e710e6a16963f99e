using Blockshot.Fuse;
using static Blockshot.Daemon.Interop.Tests.Mounts;
using static Blockshot.Daemon.Interop.Tests.SnapshotCli;

namespace Blockshot.Daemon.Interop.Tests;

/// <summary>
/// One snapshot set over two devices that carry mounted ext4, everything over FUSE and loop devices: the
/// take freezes both filesystems through hooks, and each snapshot mounts as the filesystem at the take.
/// </summary>
public class SnapshotFuseExt4Tests
{
    private static readonly string[] Devices = ["a", "b"];

    [RequiresRootFact("/dev/fuse", "losetup", "mkfs.ext4", "fsck.ext4", "mount", "umount", "fsfreeze", "sync")]
    public async Task A_set_over_two_ext4_devices_mounts_as_the_take_time_trees_and_takes_writes_without_touching_the_origins()
    {
        using var dir = new TempDir("bs-snapfuse-ext4");
        var origin = new Dictionary<string, Side>();
        var snap = new Dictionary<string, Side>();
        foreach (var d in Devices)
        {
            File.WriteAllBytes(dir.File($"{d}.raw"), new byte[64 << 20]);
            origin[d] = new Side(dir.File($"{d}.img"), Directory.CreateDirectory(dir.File($"mnt-{d}")).FullName);
            snap[d] = new Side(dir.File($"{d}.snap.img"), Directory.CreateDirectory(dir.File($"snap-{d}")).FullName);
        }
        var mounted = new List<string>();
        var daemon = await DaemonProcess.StartAsync(dir.Path);
        try
        {
            var atTake = new Dictionary<string, Dictionary<string, string>>();
            foreach (var d in Devices)
            {
                (await Cli(daemon, "device", "add", d, dir.File($"{d}.raw"))).Ok("device add " + d);
                origin[d].Loop = LoopOf(await Cli(daemon, "export", "add", d, "--type", "fuse", "--path", origin[d].File, "--loop"), "export add " + d);
                (await Run.ToEndAsync("mkfs.ext4", ["-q", "-F", origin[d].Loop])).Ok("mkfs.ext4 " + d);
                await MountAsync(origin[d].Loop, origin[d].Mount, mounted);
                atTake[d] = FileTree.Write(origin[d].Mount, seed: d[0]);
            }

            var (ma, mb) = (origin["a"].Mount, origin["b"].Mount);
            (await Cli(daemon, "snapshot", "create", "-d", "a", "-d", "b", "--storage", "memory", "--writable", "--name", "set",
                "--freeze-hook", $"fsfreeze -f '{ma}' && fsfreeze -f '{mb}'",
                "--thaw-hook", $"fsfreeze -u '{ma}'; fsfreeze -u '{mb}'")).Ok("snapshot create with freeze hooks");

            // After the take: files rewritten, deleted and added on both origins, and pushed to the devices.
            var afterTake = new Dictionary<string, Dictionary<string, string>>();
            foreach (var d in Devices)
            {
                var root = origin[d].Mount;
                var rewritten = atTake[d].Keys.Order(StringComparer.Ordinal).First(k => k.EndsWith("file1.bin", StringComparison.Ordinal));
                var deleted = atTake[d].Keys.Order(StringComparer.Ordinal).First(k => k.EndsWith("file2.bin", StringComparison.Ordinal));
                await File.WriteAllBytesAsync(Path.Combine(root, rewritten), Patterns.Make(1 << 20, 0, 90));
                File.Delete(Path.Combine(root, deleted));
                FileTree.Write(Path.Combine(root, "after-take"), seed: 100 + d[0], files: 4);
                (await Run.ToEndAsync("sync", ["-f", root])).Ok("sync " + d);
                afterTake[d] = FileTree.Read(root);
                Assert.NotEqual(atTake[d][rewritten], afterTake[d][rewritten]);
                Assert.DoesNotContain(deleted, afterTake[d].Keys);
            }
            foreach (var member in (await Json(daemon, "snapshot", "info", "set"))["devices"]!.AsArray())
            {
                Assert.Equal("active", member!["state"]!.GetValue<string>());
                Assert.True(member["copied-chunks"]!.GetValue<long>() > 0, $"{member["device"]}: no chunk was copied, so the origin writes never reached the device");
            }

            foreach (var d in Devices)
            {
                snap[d].Loop = LoopOf(await Cli(daemon, "snapshot", "export", "set", "-d", d, "--type", "fuse", "--path", snap[d].File, "--loop"),
                    "snapshot export " + d);
                // Writable: ext4 may replay its journal at mount.
                await MountAsync(snap[d].Loop, snap[d].Mount, mounted);
                FileTree.AssertEqual(atTake[d], snap[d].Mount, $"snapshot of {d} as mounted");
                await File.WriteAllBytesAsync(Path.Combine(snap[d].Mount, "snapshot-only.bin"), Patterns.Make(1 << 20, 0, 77));
                await UnmountAsync(snap[d].Mount, mounted);
                (await Run.ToEndAsync("fsck.ext4", ["-f", "-n", snap[d].Loop])).Ok($"fsck.ext4 -f -n on the snapshot of {d}");
                await MountAsync(snap[d].Loop, snap[d].Mount, mounted);
                var expected = new Dictionary<string, string>(atTake[d]) { ["snapshot-only.bin"] = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(Patterns.Make(1 << 20, 0, 77))) };
                FileTree.AssertEqual(expected, snap[d].Mount, $"snapshot of {d} after a write and a remount");
                await UnmountAsync(snap[d].Mount, mounted);
            }

            // The origins kept what was written after the take, and nothing the snapshots took.
            foreach (var d in Devices)
            {
                FileTree.AssertEqual(afterTake[d], origin[d].Mount, $"origin {d}");
                await UnmountAsync(origin[d].Mount, mounted);
                (await Run.ToEndAsync("fsck.ext4", ["-f", "-n", origin[d].Loop])).Ok($"fsck.ext4 -f -n on origin {d}");
            }

            // Destroying the set with force takes its FUSE exports away: no mount, no loop device.
            (await Cli(daemon, "snapshot", "destroy", "set", "--force")).Ok("snapshot destroy --force");
            foreach (var d in Devices)
            {
                Assert.False(MountedAt(snap[d].File), $"{snap[d].File} is still mounted after destroy --force");
                Assert.Empty(LoopDevice.FindByBackingFile(snap[d].File));
                Assert.False(File.Exists(snap[d].File), "the mountpoint file the daemon created is still there");
            }
            var exports = (await Json(daemon, "export", "list")).AsArray().Select(e => e!["name"]!.GetValue<string>()).Order(StringComparer.Ordinal);
            Assert.Equal(Devices, exports);
            Assert.Equal(0, await daemon.TerminateAsync());
        }
        finally
        {
            await UnmountAllAsync(mounted);
            await daemon.DisposeAsync();
            CleanupFuse([.. origin.Values.Select(s => s.File), .. snap.Values.Select(s => s.File)]);
        }
    }

    /// <summary>The loop device a FUSE export printed alone on stdout.</summary>
    internal static string LoopOf(Run.Result result, string what)
    {
        var printed = result.Ok(what).Stdout.Trim();
        Assert.Matches(@"^/dev/loop\d+$", printed);
        return printed;
    }

    /// <summary>One FUSE export with its loop device, and where the filesystem on it is mounted.</summary>
    private sealed class Side(string file, string mount)
    {
        public string File => file;

        public string Mount => mount;

        public string Loop { get; set; } = "";
    }
}
