using System.Buffers.Binary;
using System.Text.Json;

namespace Blockshot.Interop.Tests;

/// <summary><c>check</c> and <c>map</c>: the reference tool's exit codes, repairs and output.</summary>
public class ImageCheckMapTests
{
    /// <summary>A default qcow2 image (64 KiB clusters, refcount block at 0x20000) with data in clusters 5 and up.</summary>
    private static async Task<string> ImageWithDataAsync(TempDir dir)
    {
        var image = dir.File("img.qcow2");
        await ImageTool.QemuOkAsync("create", "-q", "-f", "qcow2", image, "64M");
        await ImageTool.IoAsync(image, "qcow2", "write -P 1 0 64k", "write -P 2 1M 256k", "write -P 3 20M 64k");
        return image;
    }

    private static void Patch(string image, long offset, ReadOnlySpan<byte> bytes)
    {
        using var f = File.OpenHandle(image, FileMode.Open, FileAccess.ReadWrite);
        RandomAccess.Write(f, bytes, offset);
    }

    private static ulong ReadU64(string image, long offset)
    {
        using var f = File.OpenHandle(image, FileMode.Open, FileAccess.Read);
        var b = new byte[8];
        RandomAccess.Read(f, b, offset);
        return BinaryPrimitives.ReadUInt64BigEndian(b);
    }

    [RequiresToolsFact("qemu-img", "qemu-io")]
    public async Task Exit_codes_and_repairs_match_the_reference_checker()
    {
        using var dir = new TempDir();
        var image = await ImageWithDataAsync(dir);
        var clean = await ImageTool.OursAsync("check", image);
        Assert.Equal(0, clean.ExitCode);
        Assert.Contains("No errors were found on the image.", clean.Stdout);
        var json = JsonDocument.Parse(await ImageTool.OursOkAsync("check", "--output=json", image)).RootElement;
        var peerJson = JsonDocument.Parse(await ImageTool.QemuOkAsync("check", "--output=json", image)).RootElement;
        Assert.Empty(ImageTool.CommonFieldDifferences(json, peerJson));

        // A leak: a refcount for a cluster nothing uses (the image's last cluster, past what is used).
        var leaky = dir.File("leaky.qcow2");
        File.Copy(image, leaky);
        var clusters = new FileInfo(leaky).Length / 65536;
        var extra = clusters + 2;
        new FileStream(leaky, FileMode.Open).Using(f => f.SetLength((extra + 1) * 65536));
        Patch(leaky, 0x20000 + (extra * 2), [0, 1]);
        var leaks = await ImageTool.OursAsync("check", leaky);
        var peerLeaks = await ImageTool.QemuAsync("check", leaky);
        Assert.Equal(3, peerLeaks.ExitCode);
        Assert.True(leaks.ExitCode == 3, $"exit {leaks.ExitCode}: {leaks.Stdout}{leaks.Stderr}");
        Assert.Contains("leaked clusters were found", leaks.Stdout);

        // A corruption: the COPIED flag cleared on a data cluster's L2 entry.
        var corrupt = dir.File("corrupt.qcow2");
        File.Copy(image, corrupt);
        var l1 = (long)ReadU64(corrupt, 40);
        var l2 = (long)(ReadU64(corrupt, l1) & 0x00fffffffffffe00UL);
        var entry = ReadU64(corrupt, l2);
        var cleared = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(cleared, entry & ~(1UL << 63));
        Patch(corrupt, l2, cleared);
        var errors = await ImageTool.OursAsync("check", corrupt);
        Assert.Equal(2, (await ImageTool.QemuAsync("check", corrupt)).ExitCode);
        Assert.True(errors.ExitCode == 2, $"exit {errors.ExitCode}: {errors.Stdout}{errors.Stderr}");
        Assert.Contains("ERROR OFLAG_COPIED", errors.Stdout);

        // -r leaks repairs leaks and (as the reference tool does) wrong COPIED flags; -r all everything.
        var fixedLeaks = await ImageTool.OursAsync("check", "-r", "leaks", leaky);
        Assert.Equal(0, fixedLeaks.ExitCode);
        Assert.Contains("1 leaked clusters", fixedLeaks.Stdout);
        await ImageTool.AssertCleanAsync(leaky);
        var peerCorrupt = dir.File("peer-corrupt.qcow2");
        var allCorrupt = dir.File("all-corrupt.qcow2");
        File.Copy(corrupt, peerCorrupt);
        File.Copy(corrupt, allCorrupt);
        var ourRepair = await ImageTool.OursAsync("check", "-r", "leaks", corrupt);
        var peerRepair = await ImageTool.QemuAsync("check", "-r", "leaks", peerCorrupt);
        Assert.Equal(peerRepair.ExitCode, ourRepair.ExitCode);
        Assert.Contains("Repairing OFLAG_COPIED", ourRepair.Stdout);
        var fixedAll = await ImageTool.OursAsync("check", "-r", "all", allCorrupt);
        Assert.True(fixedAll.ExitCode == 0, fixedAll.Stdout + fixedAll.Stderr);
        foreach (var repaired in (string[])[corrupt, allCorrupt])
        {
            await ImageTool.AssertCleanAsync(repaired);
            await ImageTool.AssertSameContentAsync(repaired, image);
        }

        // Check failures are 1 (2 and 3 are taken), a raw image is 63.
        Assert.Equal(1, (await ImageTool.OursAsync("check", dir.File("nope.qcow2"))).ExitCode);
        var raw = ImageTool.ScatteredRaw(dir.File("d.raw"), 1 << 20, 1, 2);
        Assert.Equal(63, (await ImageTool.OursAsync("check", raw)).ExitCode);
        Assert.Equal(63, (await ImageTool.QemuAsync("check", raw)).ExitCode);
    }

    [RequiresToolsFact("qemu-img", "qemu-io")]
    public async Task Map_matches_the_reference_output_through_a_chain()
    {
        using var dir = new TempDir();
        var raw = ImageTool.RawWith(dir.File("base.raw"), 24 << 20, 3, (0, 100_000), (10 << 20, 70_000));
        var mid = dir.File("mid.qcow2");
        var top = dir.File("top.qcow2");
        await ImageTool.QemuOkAsync("create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", mid);
        await ImageTool.IoAsync(mid, "qcow2", "write -P 4 64k 128k", "write -z 12M 1M");
        await ImageTool.QemuOkAsync("create", "-q", "-f", "qcow2", "-o", "cluster_size=4k", "-b", "mid.qcow2", "-F", "qcow2", top, "32M");
        await ImageTool.IoAsync(top, "qcow2", "write -P 5 8k 12k", "write -z 10M 8k", "write -c -P 6 16M 4k");

        foreach (var image in (string[])[top, mid, raw])
        {
            var ours = await ImageTool.OursOkAsync("map", "--output=json", image);
            var theirs = await ImageTool.QemuOkAsync("map", "--output=json", image);
            Assert.Equal(theirs, ours);
        }
        Assert.Equal(await ImageTool.QemuOkAsync("map", mid), await ImageTool.OursOkAsync("map", mid));
        var window = await ImageTool.OursOkAsync("map", "--output=json", "--start-offset=64k", "--max-length=11M", top);
        Assert.Equal(await ImageTool.QemuOkAsync("map", "--output=json", "--start-offset=64k", "--max-length=11M", top), window);
    }
}

internal static class StreamExtensions
{
    public static void Using(this FileStream stream, Action<FileStream> action)
    {
        using (stream)
        {
            action(stream);
        }
    }
}
