using System.Text.Json;

namespace Blockshot.Interop.Tests;

/// <summary><c>blockshot image info</c> against <c>qemu-img info</c> on the same images.</summary>
public class ImageInfoTests
{
    public static TheoryData<string> Options()
    {
        var data = new TheoryData<string> { "", "compat=0.10", "cluster_size=4k,extended_l2=off,compression_type=zstd,lazy_refcounts=on" };
        if (ImageTool.Long)
        {
            data.Add("cluster_size=2M,refcount_bits=64");
            data.Add("cluster_size=512,refcount_bits=1");
            data.Add("extended_l2=on,cluster_size=128k");
            data.Add("data_file=data.bin,data_file_raw=on");
            data.Add("preallocation=metadata");
        }
        return data;
    }

    [RequiresToolsTheory("qemu-img", "qemu-io")]
    [MemberData(nameof(Options))]
    public async Task Every_field_both_print_agrees(string options)
    {
        using var dir = new TempDir();
        var baseImage = dir.File("base.qcow2");
        var image = dir.File("img.qcow2");
        await ImageTool.QemuOkAsync("create", "-q", "-f", "qcow2", baseImage, "32M");
        var create = new List<string> { "create", "-q", "-f", "qcow2" };
        if (options.Length > 0)
        {
            create.AddRange(["-o", options.Replace("data.bin", dir.File("data.bin"), StringComparison.Ordinal)]);
        }
        var withBacking = !options.Contains("data_file_raw", StringComparison.Ordinal) && !options.Contains("preallocation", StringComparison.Ordinal);
        if (withBacking)
        {
            create.AddRange(["-b", "base.qcow2", "-F", "qcow2"]);
        }
        create.AddRange([image, "48M"]);
        await ImageTool.QemuOkAsync([.. create]);
        await ImageTool.IoAsync(image, "qcow2", "write -P 3 0 200k", "write -z 1M 64k");
        await ImageTool.QemuOkAsync("snapshot", "-c", "first", image);
        if (!options.Contains("compat=0.10", StringComparison.Ordinal))
        {
            await ImageTool.QemuOkAsync("bitmap", "--add", "-g", "64k", image, "daily");
            await ImageTool.QemuOkAsync("bitmap", "--add", image, "off", "--disable");
        }

        var ours = JsonDocument.Parse(await ImageTool.OursOkAsync("info", "--output=json", image)).RootElement;
        var theirs = JsonDocument.Parse(await ImageTool.QemuOkAsync("info", "--output=json", image)).RootElement;
        var diffs = ImageTool.CommonFieldDifferences(ours, theirs);
        Assert.True(diffs.Count == 0, string.Join("\n", diffs));
        Assert.True(ImageTool.CommonFieldCount(ours, theirs) >= 15, "too few fields in common: " + ours.GetRawText());
        foreach (var key in (string[])["virtual-size", "filename", "format", "actual-size", "cluster-size", "format-specific", "dirty-flag", "snapshots"])
        {
            Assert.True(ours.TryGetProperty(key, out _), $"our info lacks '{key}'");
        }
        if (withBacking)
        {
            Assert.Equal("base.qcow2", ours.GetProperty("backing-filename").GetString());
        }

        // The human form says the same things in the reference tool's words.
        var human = await ImageTool.OursOkAsync("info", image);
        var peerHuman = await ImageTool.QemuOkAsync("info", image);
        foreach (var line in peerHuman.Split('\n').Where(l => l.StartsWith("virtual size:", StringComparison.Ordinal)
            || l.StartsWith("file format:", StringComparison.Ordinal) || l.StartsWith("cluster_size:", StringComparison.Ordinal)
            || l.StartsWith("    compat:", StringComparison.Ordinal) || l.StartsWith("backing file", StringComparison.Ordinal)))
        {
            Assert.Contains(line, human);
        }
    }

    [RequiresToolsFact("qemu-img")]
    public async Task Raw_images_and_backing_chains_agree_too()
    {
        using var dir = new TempDir();
        var raw = ImageTool.ScatteredRaw(dir.File("disk.raw"), 16 << 20, 5);
        var mid = dir.File("mid.qcow2");
        var top = dir.File("top.qcow2");
        await ImageTool.QemuOkAsync("create", "-q", "-f", "qcow2", "-b", "disk.raw", "-F", "raw", mid);
        await ImageTool.QemuOkAsync("create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", top, "20M");

        var ourRaw = JsonDocument.Parse(await ImageTool.OursOkAsync("info", "--output", "json", raw)).RootElement;
        var peerRaw = JsonDocument.Parse(await ImageTool.QemuOkAsync("info", "--output=json", raw)).RootElement;
        Assert.Empty(ImageTool.CommonFieldDifferences(ourRaw, peerRaw));
        Assert.Equal(5, ImageTool.CommonFieldCount(ourRaw, peerRaw));

        var ours = JsonDocument.Parse(await ImageTool.OursOkAsync("info", "--backing-chain", "--output=json", top)).RootElement;
        var theirs = JsonDocument.Parse(await ImageTool.QemuOkAsync("info", "--backing-chain", "--output=json", top)).RootElement;
        Assert.Equal(3, ours.GetArrayLength());
        var diffs = ImageTool.CommonFieldDifferences(ours, theirs);
        Assert.True(diffs.Count == 0, string.Join("\n", diffs));
        Assert.Equal("raw", ours[2].GetProperty("format").GetString());
    }

    [RequiresToolsFact("qemu-nbd", "qemu-img")]
    public async Task An_image_in_use_is_refused_unless_force_share()
    {
        using var dir = new TempDir();
        var image = dir.File("busy.qcow2");
        await ImageTool.QemuOkAsync("create", "-q", "-f", "qcow2", image, "8M");
        await using var peer = await ServedImage.QemuNbdAsync(dir.File("q.sock"), "-t", "-f", "qcow2", image);
        var locked = await ImageTool.OursAsync("info", image);
        Assert.True(locked.ExitCode == 4, $"exit {locked.ExitCode}: {locked.Stderr}");
        Assert.Contains("lock", locked.Stderr, StringComparison.OrdinalIgnoreCase);
        var shared = await ImageTool.OursOkAsync("info", "-U", "--output=json", image);
        Assert.Equal(8 << 20, JsonDocument.Parse(shared).RootElement.GetProperty("virtual-size").GetInt64());
    }

    [Fact]
    public async Task Missing_and_malformed_images_get_their_exit_codes()
    {
        using var dir = new TempDir();
        var missing = await ImageTool.OursAsync("info", dir.File("nope.qcow2"));
        Assert.Equal(3, missing.ExitCode);

        var bad = dir.File("bad.qcow2");
        var header = new byte[4096];
        ((byte[])[0x51, 0x46, 0x49, 0xfb]).CopyTo(header, 0);
        header[7] = 3;          // version 3
        header[23] = 40;        // cluster_bits 40: unsupported
        File.WriteAllBytes(bad, header);
        var r = await ImageTool.OursAsync("info", bad);
        Assert.True(r.ExitCode == 6, $"exit {r.ExitCode}: {r.Stderr}");
        Assert.Contains("qcow2", r.Stderr, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("bad.qcow2", r.Stderr, StringComparison.Ordinal);
    }
}
