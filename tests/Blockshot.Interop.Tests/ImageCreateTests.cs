using System.Text.Json;

namespace Blockshot.Interop.Tests;

/// <summary>Images made by <c>blockshot image create</c> are what qemu-img would have made.</summary>
public class ImageCreateTests
{
    public static TheoryData<string> Options()
    {
        var data = new TheoryData<string>
        {
            "",
            "cluster_size=4k,refcount_bits=8,lazy_refcounts=on,compression_type=zstd",
            "compat=0.10",
        };
        if (ImageTool.Long)
        {
            data.Add("extended_l2=on,cluster_size=128k");
            data.Add("cluster_size=2M,refcount_bits=64");
            data.Add("cluster_size=512,refcount_bits=1");
            data.Add("preallocation=metadata");
            data.Add("preallocation=falloc,cluster_size=256k");
            data.Add("preallocation=full,cluster_size=1M");
        }
        return data;
    }

    [RequiresToolsTheory("qemu-img", "qemu-io")]
    [MemberData(nameof(Options))]
    public async Task Created_images_check_clean_and_read_identically(string options)
    {
        using var dir = new TempDir();
        var ours = dir.File("ours.qcow2");
        var peer = dir.File("peer.qcow2");
        string[] o = options.Length > 0 ? ["-o", options] : [];
        var printed = await ImageTool.OursOkAsync(["create", "-f", "qcow2", .. o, ours, "40M"]);
        await ImageTool.QemuOkAsync(["create", "-q", "-f", "qcow2", .. o, peer, "40M"]);
        Assert.StartsWith($"Formatting '{ours}', fmt=qcow2", printed);
        await ImageTool.AssertCleanAsync(ours);

        // The peer reads and writes it, and finds what it would find in its own image.
        foreach (var image in (string[])[ours, peer])
        {
            await ImageTool.IoAsync(image, "qcow2", "write -P 0x5a 1M 300k", "write -z 5M 128k", "discard 1M 64k");
        }
        await ImageTool.AssertCleanAsync(ours);
        await ImageTool.AssertSameContentAsync(ours, peer);
        var a = JsonDocument.Parse(await ImageTool.QemuOkAsync("info", "--output=json", ours)).RootElement.GetProperty("format-specific");
        var b = JsonDocument.Parse(await ImageTool.QemuOkAsync("info", "--output=json", peer)).RootElement.GetProperty("format-specific");
        Assert.Equal(b.GetRawText(), a.GetRawText());
    }

    [RequiresToolsFact("qemu-img", "qemu-io")]
    public async Task Backing_files_raw_images_and_unsafe_creation()
    {
        using var dir = new TempDir();
        var raw = dir.File("base.raw");
        Assert.Contains("fmt=raw size=8388608", await ImageTool.OursOkAsync("create", "-f", "raw", raw, "8M"));
        Assert.Equal(8 << 20, new FileInfo(raw).Length);
        await ImageTool.IoAsync(raw, "raw", "write -P 7 0 64k");

        // The size comes from the backing file when none is given.
        var top = dir.File("top.qcow2");
        await ImageTool.OursOkAsync("create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", top);
        var info = JsonDocument.Parse(await ImageTool.QemuOkAsync("info", "--output=json", top)).RootElement;
        Assert.Equal(8 << 20, info.GetProperty("virtual-size").GetInt64());
        Assert.Equal("base.raw", info.GetProperty("backing-filename").GetString());
        Assert.Equal("raw", info.GetProperty("backing-filename-format").GetString());
        await ImageTool.AssertSameContentAsync(top, raw);

        // -u creates over a backing file that does not exist yet, but then needs a size.
        var later = dir.File("later.qcow2");
        var noSize = await ImageTool.OursAsync("create", "-f", "qcow2", "-u", "-b", "missing.qcow2", "-F", "qcow2", later);
        Assert.Equal(2, noSize.ExitCode);
        await ImageTool.OursOkAsync("create", "-q", "-f", "qcow2", "-u", "-b", "missing.qcow2", "-F", "qcow2", later, "1M");
        Assert.False(File.Exists(dir.File("missing.qcow2")));
        await ImageTool.QemuOkAsync("create", "-q", "-f", "qcow2", dir.File("missing.qcow2"), "1M");
        await ImageTool.AssertCleanAsync(later);

        var noFormat = await ImageTool.OursAsync("create", "-f", "qcow2", "-b", "base.raw", dir.File("x.qcow2"));
        Assert.NotEqual(0, noFormat.ExitCode);
        Assert.Contains("backing format", noFormat.Stderr, StringComparison.OrdinalIgnoreCase);
        var missing = await ImageTool.OursAsync("create", "-f", "qcow2", "-b", "nope.qcow2", "-F", "qcow2", dir.File("y.qcow2"));
        Assert.NotEqual(0, missing.ExitCode);
        var badOption = await ImageTool.OursAsync("create", "-f", "qcow2", "-o", "cluster_size=1000", dir.File("z.qcow2"), "1M");
        Assert.NotEqual(0, badOption.ExitCode);
        Assert.Contains("power of two", badOption.Stderr);
        var unknown = await ImageTool.OursAsync("create", "-f", "qcow2", "-o", "frobnicate=1", dir.File("z.qcow2"), "1M");
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("frobnicate", unknown.Stderr);
    }

    [RequiresToolsFact("qemu-nbd", "qemu-img")]
    public async Task Creating_over_an_image_in_use_is_refused_and_leaves_it_intact()
    {
        using var dir = new TempDir();
        var image = dir.File("busy.qcow2");
        await ImageTool.QemuOkAsync("create", "-q", "-f", "qcow2", image, "8M");
        var before = await File.ReadAllBytesAsync(image);
        await using (var peer = await ServedImage.QemuNbdAsync(dir.File("q.sock"), "-t", "-f", "qcow2", image))
        {
            var r = await ImageTool.OursAsync("create", "-f", "qcow2", image, "4M");
            Assert.True(r.ExitCode == 4, $"exit {r.ExitCode}: {r.Stderr}");
        }
        Assert.Equal(before, await File.ReadAllBytesAsync(image));
    }
}
