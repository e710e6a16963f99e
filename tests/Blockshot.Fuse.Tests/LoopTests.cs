using System.Security.Cryptography;
using Blockshot.Drivers;
using Blockshot.Fuse.Native;
using Xunit.Abstractions;

namespace Blockshot.Fuse.Tests;

/// <summary>A loop device on the exported file, driven by real tools: mkfs.ext4, mount, fsck, fio.</summary>
[Collection(HeavyTools.Name)]
public class LoopTests(ITestOutputHelper output)
{
    [RequiresRootFact("mkfs.ext4", "fsck.ext4", "mount", "umount")]
    public Task An_ext4_filesystem_on_the_loop_device_survives_unmount_fsck_and_remount() =>
        FileSystemRoundTripAsync(256L << 20,
            ["mkfs.ext4", "-q", "-F", "-E", "nodiscard,lazy_itable_init=0,lazy_journal_init=0"], ["fsck.ext4", "-fn"]);

    // xfsprogs refuses file systems under 300 MiB.
    [RequiresRootFact("mkfs.xfs", "xfs_repair", "mount", "umount")]
    public Task An_xfs_filesystem_on_the_loop_device_survives_unmount_repair_check_and_remount() =>
        FileSystemRoundTripAsync(320L << 20, ["mkfs.xfs", "-q", "-f", "-K"], ["xfs_repair", "-n"]);

    /// <summary>
    /// mkfs on the loop device, a file tree with checksums, unmount, a read-only check that must find
    /// nothing, a read-only remount that must give every file back.
    /// </summary>
    private async Task FileSystemRoundTripAsync(long size, string[] mkfs, string[] check)
    {
        var node = new MemoryNode(size);
        await using var scope = await ExportScope.StartAsync(node, new FuseExportOptions { Loop = true });
        output.WriteLine($"{scope.Loop}: direct I/O {scope.Export.LoopDirectIo} {scope.Export.LoopDirectIoRefusal}");
        var mnt = scope.Scratch("mnt");
        Directory.CreateDirectory(mnt);
        var files = new Dictionary<string, byte[]>();

        await Run.ToolAsync(mkfs[0], [.. mkfs[1..], scope.Loop]);
        await Run.ToolAsync("mount", scope.Loop, mnt);
        try
        {
            var rng = new Random(17);
            for (var d = 0; d < 4; d++)
            {
                var sub = Path.Combine(mnt, $"dir{d}", "nested");
                Directory.CreateDirectory(sub);
                for (var f = 0; f < 6; f++)
                {
                    var length = rng.Next(4) == 0 ? rng.Next(1, 4 << 20) : rng.Next(1, 40000);
                    var data = Patterns.Make(length, d * 100 + f, f);
                    var name = Path.Combine($"dir{d}", f % 2 == 0 ? "nested" : "", $"file{f}.bin");
                    await File.WriteAllBytesAsync(Path.Combine(mnt, name), data);
                    files[name] = SHA256.HashData(data);
                }
            }
        }
        finally
        {
            await Run.ToolAsync("umount", mnt);
        }

        var fsck = await Run.ExitCodeAsync(TimeSpan.FromSeconds(120), check[0], [.. check[1..], scope.Loop]);
        Assert.True(fsck.Exit == 0, $"{string.Join(' ', check)} reported problems:\n{fsck.Output}");

        await Run.ToolAsync("mount", "-o", "ro", scope.Loop, mnt);
        try
        {
            foreach (var (name, hash) in files)
            {
                Assert.Equal(hash, SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(mnt, name))));
            }
        }
        finally
        {
            await Run.ToolAsync("umount", mnt);
        }
        Assert.True(node.AllocatedBytes > 0);
        Assert.Equal(0, scope.Export.Counters.Errors);
    }

    [RequiresRootFact("fio")]
    public async Task Fio_random_read_write_with_verify_passes_on_the_loop_device()
    {
        await using var scope = await ExportScope.StartAsync(new MemoryNode(128L << 20), new FuseExportOptions { Loop = true });
        var result = await Fio(scope.Loop, "--rw=randrw", "--bs=4k", "--iodepth=32", "--size=48m");
        output.WriteLine(result);
        Assert.Equal(0, scope.Export.Counters.Errors);
    }

    [RequiresRootFact("fio")]
    public async Task Fio_with_verify_passes_on_a_node_that_completes_asynchronously()
    {
        using var dir = new TempDir("blockshot-fuse-file");
        await using var node = new TestFileNode(dir.File("backing.raw"), 64L << 20);
        await using var scope = await ExportScope.StartAsync(node, new FuseExportOptions { Loop = true, Readers = 2 });
        var result = await Fio(scope.Loop, "--rw=randrw", "--bsrange=4k-256k", "--iodepth=16", "--size=32m");
        output.WriteLine(result);
        Assert.Equal(0, scope.Export.Counters.Errors);
    }

    [RequiresRootFact("blockdev")]
    public async Task The_loop_device_has_the_node_size_and_honours_read_only()
    {
        const long Size = 96L << 20;
        await using var scope = await ExportScope.StartAsync(new MemoryNode(Size), new FuseExportOptions { Loop = true, ReadOnly = true, LoopBlockSize = 4096 });
        Assert.Equal($"{Size}", (await Run.ToolAsync("blockdev", "--getsize64", scope.Loop)).Trim());
        Assert.Equal("1", (await Run.ToolAsync("blockdev", "--getro", scope.Loop)).Trim());
        Assert.Equal("4096", (await Run.ToolAsync("blockdev", "--getss", scope.Loop)).Trim());
        Assert.Contains(scope.Loop, LoopDevice.FindByBackingFile(scope.File));
        Assert.True(scope.Export.LoopDirectIo, $"direct I/O refused at 4096-byte blocks: {scope.Export.LoopDirectIoRefusal}");
        // Linux lets a read-only block device be opened for writing; the write itself is refused.
        var fd = Libc.Open(scope.Loop, Libc.OWrOnly | Libc.OCloExec, 0);
        Assert.True(fd >= 0, $"open failed: errno {Libc.Errno}");
        try
        {
            var block = new byte[4096];
            unsafe
            {
                fixed (byte* p = block)
                {
                    Assert.True(Libc.Write(fd, p, block.Length) < 0, "a read-only loop device took a write");
                }
            }
        }
        finally
        {
            Libc.CloseQuietly(fd);
        }
    }

    [RequiresRootFact("blockdev")]
    public async Task A_resized_node_reaches_the_file_and_the_loop_device_after_notify()
    {
        var node = new MemoryNode(16L << 20);
        await using var scope = await ExportScope.StartAsync(node, new FuseExportOptions { Loop = true });
        Assert.Equal(16L << 20, new FileInfo(scope.File).Length);
        await node.ResizeAsync(40L << 20);
        await Task.Run(scope.Export.NotifySizeChanged);
        Assert.Equal(40L << 20, new FileInfo(scope.File).Length);
        Assert.Equal($"{40L << 20}", (await Run.ToolAsync("blockdev", "--getsize64", scope.Loop)).Trim());
    }

    [RequiresRootFact("blockdev")]
    public async Task The_pre_loop_configure_path_binds_too_and_data_reaches_the_node()
    {
        var node = new MemoryNode(32L << 20);
        await using var scope = await ExportScope.StartAsync(node);
        using (var loop = LoopDevice.Attach(scope.File, readOnly: false, directIo: true, blockSize: 4096, autoClear: true, legacy: true))
        {
            output.WriteLine($"{loop}: direct I/O {loop.DirectIo} {loop.DirectIoRefusal}");
            Assert.Equal($"{32L << 20}", (await Run.ToolAsync("blockdev", "--getsize64", loop.Path)).Trim());
            Assert.Equal("4096", (await Run.ToolAsync("blockdev", "--getss", loop.Path)).Trim());
            using (var device = new FileStream(loop.Path, FileMode.Open, FileAccess.Write))
            {
                device.Position = 1 << 20;
                device.Write(Patterns.Make(8192, 1 << 20, 6));
                device.Flush(flushToDisk: true);
            }
            var back = new byte[8192];
            await node.ReadAsync(1 << 20, back);
            Assert.Equal(Patterns.Make(8192, 1 << 20, 6), back);
        }
        Assert.Empty(LoopDevice.FindByBackingFile(scope.File));
    }

    private static async Task<string> Fio(string device, params string[] job)
    {
        string[] common =
        [
            "--name=blockshot", $"--filename={device}", "--ioengine=libaio", "--direct=1", "--verify=crc32c",
            "--verify_fatal=1", "--do_verify=1", "--randseed=1234",
        ];
        var report = await Run.ToolAsync(TimeSpan.FromSeconds(120), "fio", [.. common, .. job]);
        // fio exits non-zero on a verify failure (verify_fatal); the job line also reports the error count.
        Assert.Contains("err= 0", report, StringComparison.Ordinal);
        return string.Join('\n', report.Split('\n').Where(l => l.Contains("IOPS", StringComparison.Ordinal) || l.Contains("err=", StringComparison.Ordinal)));
    }
}

/// <summary>Tests that run heavy external tools share the two cores one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class HeavyTools
{
    public const string Name = "heavy tools";
}
