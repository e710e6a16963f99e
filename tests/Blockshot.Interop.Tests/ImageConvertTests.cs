using System.Text.Json;

namespace Blockshot.Interop.Tests;

/// <summary><c>blockshot image convert</c> both ways with qemu-img, to and from NBD, compressed, with bitmaps.</summary>
public class ImageConvertTests
{
    public static TheoryData<string, string> Targets()
    {
        // -C (copy offload) is ours only: the data goes file to file inside the kernel, and the result must
        // still match what the reference tool makes without it (its -C would keep written zeros).
        var data = new TheoryData<string, string> { { "qcow2", "" }, { "qcow2", "-c" }, { "raw", "" }, { "qcow2", "-C" }, { "raw", "-C" } };
        data.Add("qcow2", ImageTool.Long ? "cluster_size=4k,extended_l2=off" : "-c,compression_type=zstd");
        if (ImageTool.Long)
        {
            data.Add("qcow2", "compat=0.10");
            data.Add("qcow2", "extended_l2=on,cluster_size=128k");
            data.Add("qcow2", "-c,cluster_size=2M");
            data.Add("qcow2", "-c,compression_type=zstd");
        }
        return data;
    }

    /// <summary>A source with data, zero runs inside data, and holes; some of it compressible.</summary>
    private static string Source(TempDir dir)
    {
        var raw = ImageTool.ScatteredRaw(dir.File("src.raw"), 40 << 20, 11, 16);
        using var f = File.OpenWrite(raw);
        f.Position = 30 << 20;
        var text = System.Text.Encoding.ASCII.GetBytes(string.Concat(Enumerable.Range(0, 40000).Select(i => $"line {i} ")));
        f.Write(text);
        f.Position = 5 << 20;
        f.Write(new byte[1 << 20]); // written zeros inside the file
        return raw;
    }

    private static string[] Flags(string spec)
    {
        var args = new List<string>();
        foreach (var part in spec.Split(',', 2, StringSplitOptions.RemoveEmptyEntries))
        {
            if (part is "-c" or "-C")
            {
                args.Add(part);
            }
            else
            {
                args.AddRange(["-o", part]);
            }
        }
        return [.. args];
    }

    [RequiresToolsTheory("qemu-img")]
    [MemberData(nameof(Targets))]
    public async Task Converts_both_ways_with_the_reference_tool(string format, string spec)
    {
        using var dir = new TempDir();
        var raw = Source(dir);
        var ours = dir.File($"ours.{format}");
        var peer = dir.File($"peer.{format}");
        var flags = Flags(spec);
        await ImageTool.OursOkAsync(["convert", "-f", "raw", "-O", format, .. flags, raw, ours]);
        await ImageTool.QemuOkAsync(["convert", "-f", "raw", "-O", format, .. flags.Where(f => f != "-C"), raw, peer]);
        if (format == "qcow2")
        {
            await ImageTool.AssertCleanAsync(ours);
            if (flags.Contains("-c"))
            {
                var check = JsonDocument.Parse((await ImageTool.QemuAsync("check", "--output=json", ours)).Stdout).RootElement;
                Assert.True(check.GetProperty("compressed-clusters").GetInt64() > 0, "nothing was compressed");
            }
            var ourInfo = JsonDocument.Parse(await ImageTool.QemuOkAsync("info", "--output=json", ours)).RootElement.GetProperty("format-specific");
            var peerInfo = JsonDocument.Parse(await ImageTool.QemuOkAsync("info", "--output=json", peer)).RootElement.GetProperty("format-specific");
            Assert.Equal(peerInfo.GetRawText(), ourInfo.GetRawText());
        }
        await ImageTool.AssertSameContentAsync(raw, ours);

        // Holes stay holes: what the peer leaves unallocated, we do too.
        // (A raw file the reference tool creates has its first 4 KiB allocated; ours does not.)
        var ourMap = JsonDocument.Parse(await ImageTool.QemuOkAsync("map", "--output=json", ours)).RootElement;
        var peerMap = JsonDocument.Parse(await ImageTool.QemuOkAsync("map", "--output=json", peer)).RootElement;
        Assert.InRange(DataBytes(ourMap), DataBytes(peerMap) - (format == "raw" ? 4096 : 0), DataBytes(peerMap));

        // And back: the reference tool's image through ours, ours through the reference tool.
        var back = dir.File("back.raw");
        await ImageTool.OursOkAsync(["convert", .. flags.Where(f => f == "-C"), "-O", "raw", peer, back]);
        await ImageTool.AssertSameContentAsync(raw, back);
        var peerBack = dir.File("peer-back.raw");
        await ImageTool.QemuOkAsync("convert", "-O", "raw", ours, peerBack);
        Assert.Equal(await File.ReadAllBytesAsync(raw), await File.ReadAllBytesAsync(peerBack));
    }

    private static long DataBytes(JsonElement map) =>
        map.EnumerateArray().Where(e => e.GetProperty("data").GetBoolean()).Sum(e => e.GetProperty("length").GetInt64());

    [RequiresToolsFact("qemu-img", "qemu-io")]
    public async Task Chains_snapshots_existing_targets_and_progress()
    {
        using var dir = new TempDir();
        var raw = Source(dir);
        var baseImage = dir.File("base.qcow2");
        var top = dir.File("top.qcow2");
        await ImageTool.QemuOkAsync("convert", "-O", "qcow2", raw, baseImage);
        await ImageTool.QemuOkAsync("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top);
        await ImageTool.IoAsync(top, "qcow2", "write -P 9 2M 3M", "write -z 30M 64k");
        await ImageTool.QemuOkAsync("snapshot", "-c", "before", top);
        await ImageTool.IoAsync(top, "qcow2", "write -P 10 0 1M");

        // The whole chain flattens into one image; with -p the last line is 100%.
        var flat = dir.File("flat.qcow2");
        var r = await ImageTool.OursOkAsync("convert", "-p", "-O", "qcow2", top, flat);
        Assert.EndsWith("(100.00/100%)", r.TrimEnd());
        await ImageTool.AssertSameContentAsync(top, flat);
        Assert.DoesNotContain("backing", await ImageTool.QemuOkAsync("info", flat));

        // An internal snapshot converts as it was.
        var old = dir.File("old.raw");
        await ImageTool.OursOkAsync("convert", "-l", "before", "-O", "raw", top, old);
        var peerOld = dir.File("peer-old.raw");
        await ImageTool.QemuOkAsync("convert", "-l", "snapshot.name=before", "-O", "raw", top, peerOld);
        Assert.Equal(await File.ReadAllBytesAsync(peerOld), await File.ReadAllBytesAsync(old));

        // -n writes into an existing image, zeroing what must read as zero.
        var existing = dir.File("existing.qcow2");
        await ImageTool.QemuOkAsync("create", "-q", "-f", "qcow2", existing, "40M");
        await ImageTool.IoAsync(existing, "qcow2", "write -P 0xee 0 40M");
        await ImageTool.OursOkAsync("convert", "-n", "-m", "3", "-O", "qcow2", top, existing);
        await ImageTool.AssertCleanAsync(existing);
        await ImageTool.AssertSameContentAsync(top, existing);

        var small = dir.File("small.raw");
        await ImageTool.QemuOkAsync("create", "-q", "-f", "raw", small, "1M");
        Assert.Equal(1, (await ImageTool.OursAsync("convert", "-n", "-O", "raw", top, small)).ExitCode);
        Assert.Equal(1, (await ImageTool.OursAsync("convert", "-c", "-O", "raw", top, dir.File("c.raw"))).ExitCode);
        Assert.Equal(3, (await ImageTool.OursAsync("convert", "-O", "raw", dir.File("nope.qcow2"), dir.File("n.raw"))).ExitCode);
    }

    [RequiresToolsFact("qemu-img", "qemu-nbd")]
    public async Task Converts_from_and_to_nbd_exports()
    {
        using var dir = new TempDir();
        var raw = Source(dir);
        var image = dir.File("served.qcow2");
        await ImageTool.QemuOkAsync("convert", "-O", "qcow2", raw, image);

        // From qemu-nbd (one connection, our requests pipelined on it) and from our own server.
        await using (var peer = await ServedImage.QemuNbdAsync(dir.File("q.sock"), "-t", "-r", "-f", "qcow2", "-x", "disk", image))
        {
            var copy = dir.File("from-peer.qcow2");
            await ImageTool.OursOkAsync("convert", "-O", "qcow2", peer.Uri("disk"), copy);
            await ImageTool.AssertSameContentAsync(raw, copy);
        }
        await using (var ours = await ServedImage.BlockshotAsync(dir.File("b.sock"), image, "--read-only", "--name", "disk"))
        {
            var copy = dir.File("from-ours.raw");
            await ImageTool.OursOkAsync("convert", "-f", "raw", "-O", "raw", ours.Uri("disk"), copy);
            Assert.Equal(await File.ReadAllBytesAsync(raw), await File.ReadAllBytesAsync(copy));
        }

        // To an export: everything, zeros included, lands in the served image.
        var target = dir.File("target.qcow2");
        await ImageTool.QemuOkAsync("create", "-q", "-f", "qcow2", target, "40M");
        await ImageTool.IoAsync(target, "qcow2", "write -P 0xaa 0 40M");
        await using (var peer = await ServedImage.QemuNbdAsync(dir.File("t.sock"), "-t", "-f", "qcow2", target))
        {
            await ImageTool.OursOkAsync("convert", "-n", "-p", "-f", "raw", raw, peer.Uri());
        }
        await ImageTool.AssertCleanAsync(target);
        await ImageTool.AssertSameContentAsync(raw, target);

        Assert.Equal(2, (await ImageTool.OursAsync("convert", "-O", "raw", "nbd+unix:///x", dir.File("y.raw"))).ExitCode);
        Assert.NotEqual(0, (await ImageTool.OursAsync("convert", "-O", "raw", $"nbd+unix:///x?socket={dir.File("none.sock")}", dir.File("y.raw"))).ExitCode);
    }

    [RequiresToolsFact("qemu-img", "qemu-io", "qemu-nbd", "nbdinfo")]
    public async Task Bitmaps_are_copied_with_their_bits()
    {
        using var dir = new TempDir();
        var src = dir.File("src.qcow2");
        await ImageTool.QemuOkAsync("create", "-q", "-f", "qcow2", src, "16M");
        await ImageTool.QemuOkAsync("bitmap", "--add", "-g", "128k", src, "inc");
        await ImageTool.QemuOkAsync("bitmap", "--add", src, "frozen");
        await ImageTool.IoAsync(src, "qcow2", "write -P 1 1M 64k", "write -P 2 9M 300k");
        await ImageTool.QemuOkAsync("bitmap", "--disable", src, "frozen");
        await ImageTool.IoAsync(src, "qcow2", "write -P 3 12M 64k");

        var ours = dir.File("ours.qcow2");
        var peer = dir.File("peer.qcow2");
        await ImageTool.OursOkAsync("convert", "--bitmaps", "-O", "qcow2", src, ours);
        await ImageTool.QemuOkAsync("convert", "--bitmaps", "-O", "qcow2", src, peer);
        await ImageTool.AssertCleanAsync(ours);
        var a = JsonDocument.Parse(await ImageTool.QemuOkAsync("info", "--output=json", ours)).RootElement;
        var b = JsonDocument.Parse(await ImageTool.QemuOkAsync("info", "--output=json", peer)).RootElement;
        Assert.Equal(b.GetProperty("format-specific").GetRawText(), a.GetProperty("format-specific").GetRawText());
        foreach (var name in (string[])["inc", "frozen"])
        {
            Assert.Equal(await DirtyMapAsync(dir, peer, name), await DirtyMapAsync(dir, ours, name));
        }
        Assert.Contains("dirty", await DirtyMapAsync(dir, ours, "inc"));
    }

    private static async Task<string> DirtyMapAsync(TempDir dir, string image, string bitmap)
    {
        await using var served = await ServedImage.QemuNbdAsync(dir.File($"{bitmap}-{Path.GetFileName(image)}.sock"), "-t", "-r", "-f", "qcow2", "-B", bitmap, image);
        return (await Run.ToEndAsync("nbdinfo", ["--map=qemu:dirty-bitmap:" + bitmap, served.Uri()])).Ok("nbdinfo").Stdout;
    }
}
