using Blockshot.Core;
using Blockshot.Qcow2.Format;

namespace Blockshot.Qcow2.Tests;

public class CreateTests
{
    public static TheoryData<string, long> Matrix()
    {
        var data = new TheoryData<string, long>
        {
            { "", 1L << 30 },
            { "compat=0.10", 1L << 30 },
            { "cluster_size=512", 1L << 30 },
            { "cluster_size=2M", 100L << 30 },
            { "refcount_bits=1", 64L << 20 },
            { "refcount_bits=64,cluster_size=4k", 64L << 20 },
            { "extended_l2=on", 1L << 30 },
            { "compression_type=zstd", 1L << 30 },
            { "lazy_refcounts=on", 1L << 30 },
            { "preallocation=metadata", 20L << 20 },
            { "preallocation=falloc,cluster_size=4k", 6L << 20 },
            { "preallocation=full", 6L << 20 },
            { "preallocation=metadata,extended_l2=on", 6L << 20 },
            { "", 0 },
            { "", 1000 },
            { "cluster_size=512,refcount_bits=2", 300L << 20 },
        };
        return data;
    }

    internal static Qcow2CreateOptions Parse(string options)
    {
        var o = new Qcow2CreateOptions();
        foreach (var kv in options.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = kv.Split('=');
            var (k, v) = (parts[0], parts[1]);
            o = k switch
            {
                "compat" => o with { Compat = v == "0.10" ? Qcow2Compat.V2 : Qcow2Compat.V3 },
                "cluster_size" => o with { ClusterSize = (int)ParseSize(v) },
                "refcount_bits" => o with { RefcountBits = int.Parse(v) },
                "extended_l2" => o with { ExtendedL2 = v == "on" },
                "compression_type" => o with { CompressionType = v == "zstd" ? CompressionType.Zstd : CompressionType.Deflate },
                "lazy_refcounts" => o with { LazyRefcounts = v == "on" },
                "preallocation" => o with { Preallocation = Enum.Parse<Qcow2Preallocation>(v, ignoreCase: true) },
                _ => throw new ArgumentException(k),
            };
        }
        return o;
    }

    internal static long ParseSize(string v) => v[^1] switch
    {
        'k' => long.Parse(v[..^1]) << 10,
        'M' => long.Parse(v[..^1]) << 20,
        'G' => long.Parse(v[..^1]) << 30,
        _ => long.Parse(v),
    };

    [RequiresToolsTheory("qemu-img")]
    [MemberData(nameof(Matrix))]
    public async Task Created_images_check_clean_and_match_the_peer_tool(string options, long size)
    {
        using var dir = new TempDir();
        var ours = dir.File("ours.qcow2");
        await Qcow2Image.CreateAsync(ours, size, Parse(options));
        var (rc, report, text) = Qemu.Check(ours);
        Assert.True(rc == 0, text);
        Assert.Equal(0, report.GetProperty("check-errors").GetInt32());

        var theirs = dir.File("theirs.qcow2");
        Qemu.Img(options.Length > 0 ? ["create", "-f", "qcow2", "-o", options, theirs, size.ToString()] : ["create", "-f", "qcow2", theirs, size.ToString()]);
        var a = Qemu.InfoJson(ours);
        var b = Qemu.InfoJson(theirs);
        Assert.Equal(b.GetProperty("virtual-size").GetInt64(), a.GetProperty("virtual-size").GetInt64());
        Assert.Equal(b.GetProperty("cluster-size").GetInt64(), a.GetProperty("cluster-size").GetInt64());
        Assert.Equal(b.GetProperty("format-specific").GetRawText(), a.GetProperty("format-specific").GetRawText());

        await using var node = await Qcow2Node.OpenAsync(ours);
        Assert.Equal(b.GetProperty("virtual-size").GetInt64(), node.Size);
        var probe = new byte[Math.Min(node.Size, 1 << 20)];
        await node.ReadAsync(0, probe);
        Assert.True(probe.AsSpan().IndexOfAnyExcept((byte)0) < 0);
    }

    [RequiresToolsTheory("qemu-img")]
    [InlineData("", 1L << 30)]
    [InlineData("compat=0.10", 1L << 30)]
    [InlineData("cluster_size=4k,refcount_bits=8", 1L << 30)]
    [InlineData("preallocation=metadata", 20L << 20)]
    public async Task Simple_layouts_are_byte_identical_to_the_peer_tool(string options, long size)
    {
        using var dir = new TempDir();
        var ours = dir.File("ours.qcow2");
        await Qcow2Image.CreateAsync(ours, size, Parse(options));
        var theirs = dir.File("theirs.qcow2");
        Qemu.Img(options.Length > 0 ? ["create", "-f", "qcow2", "-o", options, theirs, size.ToString()] : ["create", "-f", "qcow2", theirs, size.ToString()]);
        Assert.Equal(File.ReadAllBytes(theirs), File.ReadAllBytes(ours));
    }

    [RequiresToolsFact("qemu-img")]
    public async Task Backing_file_and_format_are_recorded_and_size_can_come_from_the_backing()
    {
        using var dir = new TempDir();
        Qemu.Img("create", "-f", "qcow2", dir.File("base.qcow2"), "10M");
        await Qcow2Image.CreateAsync(dir.File("top.qcow2"), -1, new Qcow2CreateOptions { BackingFile = "base.qcow2", BackingFormat = "qcow2" });
        var info = Qemu.InfoJson(dir.File("top.qcow2"));
        Assert.Equal(10L << 20, info.GetProperty("virtual-size").GetInt64());
        Assert.Equal("base.qcow2", info.GetProperty("backing-filename").GetString());
        Assert.Equal("qcow2", info.GetProperty("backing-filename-format").GetString());
        Assert.Equal(0, Qemu.Check(dir.File("top.qcow2")).ExitCode);
    }

    [RequiresToolsTheory("qemu-img")]
    [InlineData(false, "off")]
    [InlineData(true, "off")]
    [InlineData(false, "falloc")]
    public async Task External_data_file_images_check_clean(bool raw, string prealloc)
    {
        using var dir = new TempDir();
        var path = dir.File("img.qcow2");
        await Qcow2Image.CreateAsync(path, 3 << 20, new Qcow2CreateOptions
        {
            DataFile = dir.File("data.bin"),
            DataFileRaw = raw,
            Preallocation = Enum.Parse<Qcow2Preallocation>(prealloc, true),
        });
        Assert.Equal(3 << 20, new FileInfo(dir.File("data.bin")).Length);
        var (rc, _, text) = Qemu.Check(path);
        Assert.True(rc == 0, text);
        var info = Qemu.InfoJson(path);
        var data = info.GetProperty("format-specific").GetProperty("data");
        Assert.Equal(dir.File("data.bin"), data.GetProperty("data-file").GetString());
        Assert.Equal(raw, data.GetProperty("data-file-raw").GetBoolean());
    }

    [Theory]
    [InlineData("cluster_size=1000", "power of two")]
    [InlineData("cluster_size=4M", "power of two")]
    [InlineData("refcount_bits=3", "Refcount width")]
    [InlineData("extended_l2=on,cluster_size=4k", "Extended L2")]
    [InlineData("compat=0.10,lazy_refcounts=on", "Lazy refcounts")]
    [InlineData("compat=0.10,refcount_bits=8", "refcount widths")]
    [InlineData("compat=0.10,compression_type=zstd", "compression type")]
    public async Task Invalid_options_are_refused_with_a_clear_message(string options, string message)
    {
        using var dir = new TempDir();
        var e = await Assert.ThrowsAsync<BlockException>(() => Qcow2Image.CreateAsync(dir.File("x.qcow2"), 1 << 20, Parse(options)).AsTask());
        Assert.Contains(message, e.Message);
        Assert.Equal(BlockError.Invalid, e.Error);
    }

    [Fact]
    public async Task Backing_file_needs_a_format()
    {
        using var dir = new TempDir();
        var e = await Assert.ThrowsAsync<BlockException>(() => Qcow2Image.CreateAsync(dir.File("x.qcow2"), 1 << 20,
            new Qcow2CreateOptions { BackingFile = "base.qcow2" }).AsTask());
        Assert.Contains("Backing file specified without backing format", e.Message);
    }
}
