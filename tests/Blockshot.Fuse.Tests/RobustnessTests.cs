using System.Diagnostics;
using Blockshot.Core.Buffers;
using Blockshot.Drivers;
using Blockshot.Fuse.FileSystem;
using Blockshot.Fuse.Protocol;

namespace Blockshot.Fuse.Tests;

/// <summary>Clients that die mid-I/O, servers that die with the file mounted, and outside unmounts.</summary>
[Collection(HeavyTools.Name)]
public class RobustnessTests
{
    [RequiresRootFact("dd")]
    public async Task A_reader_and_a_writer_killed_mid_io_leave_the_export_serving()
    {
        var node = new MemoryNode(2L << 30);
        await using var scope = await ExportScope.StartAsync(node);
        var slow = new SlowFilter(node, maxDelayMs: 3);
        // Swap in nothing: the slow filter only serves the second export below, so both paths are tried.
        await using var slowScope = await ExportScope.StartAsync(slow);

        foreach (var file in new[] { scope.File, slowScope.File })
        {
            var reader = Start("dd", $"if={file}", "of=/dev/null", "bs=1M", "iflag=direct");
            var writer = Start("dd", "if=/dev/zero", $"of={file}", "bs=256k", "oflag=direct", "conv=notrunc");
            await Task.Delay(100);
            Assert.False(reader.HasExited, "dd finished before it could be killed; make the device bigger");
            reader.Kill();
            writer.Kill();
            await reader.WaitForExitAsync();
            await writer.WaitForExitAsync();

            using var handle = File.OpenHandle(file, FileMode.Open, FileAccess.ReadWrite);
            var data = Patterns.Make(65536, 4096, 11);
            RandomAccess.Write(handle, data, 4096);
            var back = new byte[65536];
            Assert.Equal(back.Length, RandomAccess.Read(handle, back, 4096));
            Assert.Equal(data, back);
        }
        Assert.False(scope.Export.Completion.IsCompleted);
        Assert.False(slowScope.Export.Completion.IsCompleted);
    }

    [RequiresRootFact]
    public async Task A_mount_whose_device_was_closed_without_unmounting_is_cleaned_up()
    {
        using var dir = new TempDir("blockshot-fuse-stale");
        var target = dir.File("stale.img");
        using var pool = new BufferPool();
        var mount = FuseMount.Mount(target);
        try
        {
            var fileSystem = new BlockFileSystem(new MemoryNode(1 << 20), new FuseExportOptions(), new FuseExportCounters(), pool);
            using (var session = new FuseSession(mount.Fd, fileSystem, 1 << 20, 2, pool))
            {
                session.Start();
                await session.Initialized.WaitAsync(TimeSpan.FromSeconds(10));
                Assert.Equal(1 << 20, new FileInfo(target).Length);
                Assert.True(FuseMount.IsAlive(target));
                Assert.False(FuseMount.CleanupStale(target).CleanedAnything, "a live mount was cleaned");
                session.Stop();
                await session.Completion;
            }
            mount.CloseDevice(); // as a crash would: the mount stays, its server is gone

            Assert.True(FuseMount.IsFuseMounted(target));
            Assert.False(FuseMount.IsAlive(target));
            var cleaned = FuseMount.CleanupStale(target);
            Assert.Equal(1, cleaned.MountsRemoved);
            Assert.False(FuseMount.IsFuseMounted(target));
            Assert.True(FuseMount.IsAlive(target));
        }
        finally
        {
            FuseMount.CleanupStale(target);
            mount.Dispose();
        }
        Assert.Equal(0, pool.Outstanding);
    }

    [RequiresRootFact("losetup")]
    public async Task A_killed_serving_process_leaves_a_stale_mount_and_loop_device_that_cleanup_removes()
    {
        using var dir = new TempDir("blockshot-fuse-killed");
        var target = dir.File("served.img");
        File.WriteAllBytes(target, []);
        var host = StartTestHost(target, 64, "--loop");
        string? loop = null;
        try
        {
            var ready = await host.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.NotNull(ready);
            Assert.StartsWith("READY /dev/loop", ready);
            loop = ready["READY ".Length..];
            using (var handle = File.OpenHandle(target, FileMode.Open, FileAccess.Read))
            {
                var head = new byte[4];
                Assert.Equal(4, RandomAccess.Read(handle, head, 0));
                Assert.Equal(new byte[] { 0xB5, 0x0C, 0x5A, 0x07 }, head);
            }

            host.Kill(); // SIGKILL: no unmount, no detach
            await host.WaitForExitAsync();

            Assert.True(FuseMount.IsFuseMounted(target));
            Assert.False(FuseMount.IsAlive(target));
            Assert.Contains(loop, LoopDevice.FindByBackingFile(target));

            var cleaned = FuseMount.CleanupStale(target);
            Assert.Equal(1, cleaned.MountsRemoved);
            Assert.Equal([loop], cleaned.LoopDevicesDetached);
            Assert.False(FuseMount.IsFuseMounted(target));
            Assert.Empty(LoopDevice.FindByBackingFile(target));
        }
        finally
        {
            if (!host.HasExited)
            {
                host.Kill();
                await host.WaitForExitAsync();
            }
            FuseMount.CleanupStale(target);
            LoopDevice.DetachByBackingFile(target);
            host.Dispose();
        }
    }

    [RequiresRootFact]
    public async Task Starting_on_a_stale_mount_cleans_it_and_starting_on_a_live_one_is_refused()
    {
        using var dir = new TempDir("blockshot-fuse-restart");
        var target = dir.File("restart.img");
        using var pool = new BufferPool();
        var mount = FuseMount.Mount(target);
        try
        {
            var fileSystem = new BlockFileSystem(new MemoryNode(1 << 20), new FuseExportOptions(), new FuseExportCounters(), pool);
            using (var session = new FuseSession(mount.Fd, fileSystem, 1 << 20, 1, pool))
            {
                session.Start();
                await session.Initialized.WaitAsync(TimeSpan.FromSeconds(10));
                session.Stop();
                await session.Completion;
            }
            mount.CloseDevice(); // the previous server crashed

            var node = new MemoryNode(3 << 20);
            await using (var export = await FuseExport.StartAsync(node, target))
            {
                Assert.Equal(3 << 20, new FileInfo(target).Length);
                var again = await Assert.ThrowsAsync<IOException>(() => FuseExport.StartAsync(node, target));
                Assert.Contains("already", again.Message, StringComparison.Ordinal);
            }
            Assert.False(FuseMount.IsFuseMounted(target));
        }
        finally
        {
            FuseMount.CleanupStale(target);
            mount.Dispose();
        }
    }

    [RequiresRootFact("umount")]
    public async Task An_unmount_from_outside_ends_the_export_and_dispose_still_succeeds()
    {
        await using var scope = await ExportScope.StartAsync(new MemoryNode(1 << 20));
        var ended = new TaskCompletionSource<FuseExportEndReason>();
        scope.Export.Ended += (_, e) => ended.TrySetResult(e.Reason);
        await Run.ToolAsync("umount", scope.File);
        await scope.Export.Completion.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(FuseExportEndReason.Unmounted, await ended.Task.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [RequiresRootFact("fusermount3")]
    public async Task Mounting_through_fusermount3_passes_the_device_back_and_serves()
    {
        var node = new MemoryNode(2 << 20);
        await using var scope = await ExportScope.StartAsync(node, new FuseExportOptions { MountMethod = FuseMountMethod.Fusermount });
        using var handle = File.OpenHandle(scope.File, FileMode.Open, FileAccess.ReadWrite);
        RandomAccess.Write(handle, Patterns.Make(8192, 0, 3), 0);
        var back = new byte[8192];
        await node.ReadAsync(0, back);
        Assert.Equal(Patterns.Make(8192, 0, 3), back);
        Assert.Contains(MountTableLines(), l => l.Contains(scope.File, StringComparison.Ordinal) && l.Contains(FuseMount.FsType, StringComparison.Ordinal));
    }

    private static IEnumerable<string> MountTableLines() => File.ReadAllLines("/proc/self/mountinfo");

    private static Process Start(string tool, params string[] args)
    {
        var start = new ProcessStartInfo(Tools.Require(tool)) { RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        return Process.Start(start)!;
    }

    private static Process StartTestHost(params object[] args)
    {
        // The helper is built next to this assembly's project: swap the project name in the output path.
        var dll = Path.Combine(
            AppContext.BaseDirectory.Replace("Blockshot.Fuse.Tests", "Blockshot.Fuse.TestHost", StringComparison.Ordinal),
            "Blockshot.Fuse.TestHost.dll");
        Assert.True(File.Exists(dll), $"test host not built at {dll}");
        var start = new ProcessStartInfo(Environment.ProcessPath ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardInput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (!Path.GetFileNameWithoutExtension(start.FileName).Equals("dotnet", StringComparison.Ordinal))
        {
            start.FileName = "dotnet";
        }
        start.ArgumentList.Add(dll);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(Convert.ToString(arg, System.Globalization.CultureInfo.InvariantCulture)!);
        }
        return Process.Start(start)!;
    }
}
