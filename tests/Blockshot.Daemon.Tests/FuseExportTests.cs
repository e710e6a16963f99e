using Blockshot.Fuse;

namespace Blockshot.Daemon.Tests;

/// <summary>FUSE exports of the daemon, in process: parameters, serving through the slot, the mount record, removal and shutdown.</summary>
public class FuseExportTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task Bad_fuse_parameters_get_clear_errors_and_the_daemon_keeps_serving()
    {
        await using var d = await DaemonFixture.StartAsync();
        await d.Registry.AddDeviceAsync("f", d.Image("f.raw", 1 << 20), "raw", false, false, true);
        if (!File.Exists("/dev/fuse"))
        {
            var unavailable = await Assert.ThrowsAsync<ControlException>(() => d.Registry.AddExportAsync("f", "fuse", null, false, null, d.Dir.File("f.img")));
            Assert.Equal(ControlErrorCodes.NotAvailable, unavailable.Code);
            return;
        }
        async Task<ControlException> Refused(string type, string? path, bool loop = false) =>
            await Assert.ThrowsAsync<ControlException>(() => d.Registry.AddExportAsync("f", type, null, false, null, path, loop));

        var noPath = await Refused("fuse", null);
        Assert.Equal(ControlErrorCodes.InvalidParams, noPath.Code);
        Assert.Contains("needs a path", noPath.Message);
        var relative = await Refused("fuse", "f.img");
        Assert.Equal(ControlErrorCodes.InvalidParams, relative.Code);
        Assert.Contains("not absolute", relative.Message);
        var directory = await Refused("fuse", d.Dir.Path);
        Assert.Equal(ControlErrorCodes.InvalidParams, directory.Code);
        Assert.Contains("is a directory", directory.Message);
        Assert.Equal(ControlErrorCodes.NotFound, (await Refused("fuse", d.Dir.File("missing/f.img"))).Code);
        var nbdWithPath = await Refused("nbd", d.Dir.File("f.img"));
        Assert.Equal(ControlErrorCodes.InvalidParams, nbdWithPath.Code);
        Assert.Contains("fuse exports only", nbdWithPath.Message);
        Assert.Equal(ControlErrorCodes.InvalidParams, (await Refused("nbd", null, loop: true)).Code);
        Assert.Equal(ControlErrorCodes.InvalidParams, (await Refused("vhost", null)).Code);

        Assert.Empty(await d.Registry.ListExportsAsync());
        Assert.False(File.Exists(d.Dir.File("control.fuse-mounts.json")));
        await d.Registry.AddExportAsync("f", "nbd", null, false, null);
    }

    [RequiresRootFact]
    public async Task A_fuse_export_serves_the_slot_through_filter_swaps_and_suspend_and_removal_unmounts()
    {
        await using var d = await DaemonFixture.StartAsync();
        const int Size = 4 << 20;
        await d.Registry.AddDeviceAsync("f", d.Image("f.raw", Size, seed: 3), "raw", false, false, true);
        var path = d.Dir.File("f.img");
        var info = await d.Registry.AddExportAsync("f", "fuse", "f-file", false, null, path);
        Assert.Equal((path, null, "fuse"), (info.Path, info.LoopDevice, info.Type));
        Assert.True(FuseMount.IsFuseMounted(path));
        Assert.Equal(Size, new FileInfo(path).Length);
        var record = d.Dir.File("control.fuse-mounts.json");
        Assert.Contains(path, File.ReadAllText(record));

        using (var file = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite))
        {
            var head = new byte[65536];
            Assert.Equal(head.Length, RandomAccess.Read(file, head, 0));
            Assert.Equal(Patterns.Make(head.Length, 0, 3), head);

            // A filter inserted under the mounted file sees its writes; the device's slot gets them.
            await d.Registry.InsertFilterAsync("f", "throttle", null, new Dictionary<string, string>(), Timeout);
            RandomAccess.Write(file, Patterns.Make(8192, 8192, 9), 8192);
            var device = await d.Registry.GetDeviceAsync("f");
            var back = new byte[8192];
            await device.Slot.ReadAsync(8192, back);
            Assert.Equal(Patterns.Make(8192, 8192, 9), back);
            await d.Registry.RemoveFilterAsync("f", "throttle", Timeout);

            // Suspending the device holds the file's reads until it resumes.
            await d.Registry.SuspendAsync("f", Timeout, hold: null);
            var held = Task.Run(() => RandomAccess.Read(file, new byte[4096], 1 << 20));
            await Task.Delay(300);
            Assert.False(held.IsCompleted, "a read through the FUSE file ran while the device was suspended");
            var refused = await Assert.ThrowsAsync<ControlException>(() => d.Registry.RemoveExportAsync("f-file"));
            Assert.Equal(ControlErrorCodes.InvalidState, refused.Code);
            await d.Registry.ResumeAsync("f");
            Assert.Equal(4096, await held.WaitAsync(Timeout));
        }

        await d.Registry.RemoveExportAsync("f-file");
        Assert.False(FuseMount.IsFuseMounted(path));
        Assert.False(File.Exists(path), "the mountpoint file the export created was left behind");
        Assert.False(File.Exists(record), "the mount record outlived the last mount");
    }

    [RequiresRootFact]
    public async Task Two_exports_cannot_share_a_path_and_a_live_foreign_mount_is_not_mounted_over()
    {
        await using var d = await DaemonFixture.StartAsync();
        await d.Registry.AddDeviceAsync("a", d.Image("a.raw", 1 << 20), "raw", false, false, true);
        await d.Registry.AddDeviceAsync("b", d.Image("b.raw", 1 << 20), "raw", false, false, true);
        var path = d.Dir.File("shared.img");
        await d.Registry.AddExportAsync("a", "fuse", null, false, null, path);
        var taken = await Assert.ThrowsAsync<ControlException>(() => d.Registry.AddExportAsync("b", "fuse", null, false, null, path));
        Assert.Equal(ControlErrorCodes.AlreadyExists, taken.Code);

        await using var other = await FuseExport.StartAsync(new Blockshot.Drivers.MemoryNode(1 << 20), d.Dir.File("foreign.img"));
        var foreign = await Assert.ThrowsAsync<ControlException>(() => d.Registry.AddExportAsync("b", "fuse", null, false, null, other.Mountpoint));
        Assert.Equal(ControlErrorCodes.AlreadyExists, foreign.Code);
        Assert.Contains("already", foreign.Message);
        Assert.Single(await d.Registry.ListExportsAsync());
    }

    [RequiresRootFact]
    public async Task A_loop_device_export_is_listed_and_shutdown_detaches_it_and_unmounts()
    {
        string path;
        string loop;
        var d = await DaemonFixture.StartAsync();
        await using (d)
        {
            const int Size = 2 << 20;
            await d.Registry.AddDeviceAsync("l", d.Image("l.raw", Size, seed: 5), "raw", false, false, true);
            path = d.Dir.File("l.img");
            await d.Registry.AddExportAsync("l", "fuse", null, readOnly: true, null, path, loop: true);
            var listed = Assert.Single(await d.Registry.ListExportsAsync());
            Assert.True(listed.ReadOnly);
            loop = Assert.IsType<string>(listed.LoopDevice);
            Assert.StartsWith("/dev/loop", loop);
            Assert.Contains(loop, LoopDevice.FindByBackingFile(path));
            Assert.Contains(loop, File.ReadAllText(d.Dir.File("control.fuse-mounts.json")));
            using (var device = File.OpenHandle(loop, FileMode.Open, FileAccess.Read))
            {
                var head = new byte[4096];
                Assert.Equal(head.Length, RandomAccess.Read(device, head, 0));
                Assert.Equal(Patterns.Make(head.Length, 0, 5), head);
            }
            await d.Daemon.StopAsync("test");
            Assert.False(FuseMount.IsFuseMounted(path), "shutdown left the file mounted");
            Assert.DoesNotContain(loop, LoopDevice.FindByBackingFile(path));
            Assert.False(File.Exists(d.Dir.File("control.fuse-mounts.json")));
        }
    }
}
