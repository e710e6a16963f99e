namespace Blockshot.Qcow2.Tests;

/// <summary>Images written by the peer tools read byte for byte like their raw conversion.</summary>
public class ReadInteropTests
{
    private const long Size = 6 << 20;

    public static TheoryData<string, int> Cases()
    {
        var all = new List<(string, int)>
        {
            ("compat=1.1", 1),
            ("compat=0.10", 2),
            ("compat=0.10,cluster_size=512", 3),
            ("compat=1.1,cluster_size=512", 4),
            ("compat=1.1,cluster_size=4k", 5),
            ("compat=1.1,cluster_size=2M", 6),
            ("compat=1.1,refcount_bits=1", 7),
            ("compat=1.1,refcount_bits=64,cluster_size=8k", 8),
            ("compat=1.1,extended_l2=on,cluster_size=16k", 9),
            ("compat=1.1,extended_l2=on", 10),
            ("compat=1.1,extended_l2=on,cluster_size=2M", 11),
            ("compat=1.1,lazy_refcounts=on", 12),
            ("compat=1.1,preallocation=metadata", 13),
            ("compat=1.1,preallocation=falloc,cluster_size=128k", 14),
            ("compat=1.1,preallocation=full", 15),
        };
        if (TestImages.LongRun)
        {
            var seed = 100;
            foreach (var compat in new[] { "0.10", "1.1" })
            {
                for (var bits = 9; bits <= 21; bits++)
                {
                    all.Add(($"compat={compat},cluster_size={1 << bits}", seed++));
                    if (compat == "1.1" && bits >= 14)
                    {
                        all.Add(($"compat=1.1,extended_l2=on,cluster_size={1 << bits}", seed++));
                    }
                }
                foreach (var rb in new[] { 1, 2, 4, 8, 16, 32, 64 })
                {
                    if (compat == "1.1" || rb == 16)
                    {
                        all.Add(($"compat={compat},refcount_bits={rb}", seed++));
                    }
                }
            }
        }
        var data = new TheoryData<string, int>();
        foreach (var (o, s) in all)
        {
            data.Add(o, s);
        }
        return data;
    }

    [RequiresToolsTheory("qemu-img", "qemu-io")]
    [MemberData(nameof(Cases))]
    public async Task Image_with_random_writes_reads_like_its_raw_conversion(string options, int seed)
    {
        using var dir = new TempDir();
        var path = dir.File("img.qcow2");
        Qemu.Img("create", "-f", "qcow2", "-o", options, path, Size.ToString());
        var v2 = options.Contains("0.10", StringComparison.Ordinal);
        TestImages.RunIo(path, TestImages.RandomIoScript(seed, Size, 60, zeroes: true, discards: true));
        var expected = Qemu.ToRaw(path, dir.Path);
        await using var node = await Qcow2Node.OpenAsync(path, new Qcow2OpenOptions { ReadOnly = true });
        Assert.Equal(Size, node.Size);
        Assert.Equal(v2 ? 2 : 3, node.Version);
        var all = await TestImages.ReadAllAsync(node);
        Assert.True(Patterns.FirstDifference(expected, all) < 0, $"differs at {Patterns.FirstDifference(expected, all)}");
        await TestImages.CompareRandomReadsAsync(node, expected, seed, 40);
        await TestImages.CheckExtentsAsync(node, all);
    }

    [RequiresToolsTheory("qemu-img", "qemu-io")]
    [InlineData("zlib", "")]
    [InlineData("zstd", "")]
    [InlineData("zlib", "cluster_size=4k")]
    [InlineData("zstd", "cluster_size=2M")]
    [InlineData("zlib", "cluster_size=512")]
    [InlineData("zstd", "extended_l2=on,cluster_size=32k")]
    public async Task Compressed_images_read_like_their_raw_conversion(string compression, string extra)
    {
        using var dir = new TempDir();
        var src = dir.File("src.qcow2");
        Qemu.Img("create", "-f", "qcow2", src, Size.ToString());
        // Compressible pattern data, some incompressible-ish data and holes.
        TestImages.RunIo(src, TestImages.RandomIoScript(compression.Length * 31 + extra.Length, Size, 40, zeroes: true, discards: false));
        var random = new byte[200_000];
        new Random(5).NextBytes(random);
        var rawRandom = dir.File("rnd.raw");
        File.WriteAllBytes(rawRandom, random);
        var opts = "compression_type=" + compression + (extra.Length > 0 ? "," + extra : "");
        var path = dir.File("c.qcow2");
        Qemu.Img("convert", "-c", "-O", "qcow2", "-o", opts, src, path);
        // Overwrite part of one compressed cluster so compressed and normal clusters mix.
        Qemu.Io(path, "write -P 77 100000 3000");
        var expected = Qemu.ToRaw(path, dir.Path);
        await using var node = await Qcow2Node.OpenAsync(path, new Qcow2OpenOptions { ReadOnly = true });
        Assert.Equal(compression == "zstd" ? Format.CompressionType.Zstd : Format.CompressionType.Deflate, node.CompressionType);
        var all = await TestImages.ReadAllAsync(node);
        Assert.True(Patterns.FirstDifference(expected, all) < 0, $"differs at {Patterns.FirstDifference(expected, all)}");
        await TestImages.CompareRandomReadsAsync(node, expected, 3, 30);
    }

    [RequiresToolsTheory("qemu-img", "qemu-io")]
    [InlineData(1, "")]
    [InlineData(2, "")]
    [InlineData(3, "")]
    [InlineData(2, "extended_l2=on,cluster_size=64k")]
    [InlineData(3, "compat=0.10")]
    public async Task Backing_chains_read_through_every_layer(int depth, string options)
    {
        using var dir = new TempDir();
        var basePath = dir.File("base.raw");
        var baseData = new byte[Size - 1_000_000];
        new Random(depth).NextBytes(baseData);
        File.WriteAllBytes(basePath, baseData);
        var previous = "base.raw";
        var previousFormat = "raw";
        string top = basePath;
        for (var level = 1; level <= depth; level++)
        {
            top = dir.File($"layer{level}.qcow2");
            var args = new List<string> { "create", "-f", "qcow2", "-b", previous, "-F", previousFormat };
            if (options.Length > 0)
            {
                args.Add("-o");
                args.Add(options);
            }
            args.Add(top);
            args.Add(Size.ToString());
            Qemu.Img([.. args]);
            TestImages.RunIo(top, TestImages.RandomIoScript(level * 17 + depth, Size, 25, zeroes: true, discards: level % 2 == 0));
            previous = $"layer{level}.qcow2";
            previousFormat = "qcow2";
        }
        var expected = Qemu.ToRaw(top, dir.Path);
        await using var node = await Qcow2Node.OpenAsync(top, new Qcow2OpenOptions { ReadOnly = true });
        var all = await TestImages.ReadAllAsync(node);
        Assert.True(Patterns.FirstDifference(expected, all) < 0, $"differs at {Patterns.FirstDifference(expected, all)}");
        await TestImages.CompareRandomReadsAsync(node, expected, depth, 30);
        await TestImages.CheckExtentsAsync(node, all);
    }
}

public class ReadInteropFeatureTests
{
    private const long Size = 4 << 20;

    [RequiresToolsTheory("qemu-img", "qemu-io")]
    [InlineData(false, "")]
    [InlineData(true, "")]
    [InlineData(false, ",extended_l2=on")]
    public async Task External_data_file_images_read_like_their_raw_conversion(bool raw, string extra)
    {
        using var dir = new TempDir();
        var path = dir.File("img.qcow2");
        Qemu.Img("create", "-f", "qcow2", "-o", $"data_file={dir.File("data.bin")},data_file_raw={(raw ? "on" : "off")}{extra}", path, Size.ToString());
        TestImages.RunIo(path, TestImages.RandomIoScript(raw ? 1 : 2, Size, 40));
        var expected = Qemu.ToRaw(path, dir.Path);
        await using var node = await Qcow2Node.OpenAsync(path, new Qcow2OpenOptions { ReadOnly = true });
        Assert.Equal(dir.File("data.bin"), node.DataFileName);
        Assert.Equal(raw, node.DataFileRaw);
        var all = await TestImages.ReadAllAsync(node);
        Assert.True(Patterns.FirstDifference(expected, all) < 0, $"differs at {Patterns.FirstDifference(expected, all)}");
        await TestImages.CheckExtentsAsync(node, all);
        if (raw)
        {
            Assert.Equal(expected, File.ReadAllBytes(dir.File("data.bin")).AsSpan(0, (int)Size).ToArray());
        }
    }

    [RequiresToolsFact("qemu-img", "qemu-io")]
    public async Task Images_with_snapshots_and_bitmaps_read_their_active_state()
    {
        using var dir = new TempDir();
        var path = dir.File("img.qcow2");
        Qemu.Img("create", "-f", "qcow2", path, Size.ToString());
        TestImages.RunIo(path, TestImages.RandomIoScript(7, Size, 30));
        Qemu.Img("snapshot", "-c", "s1", path);
        Qemu.Img("bitmap", "--add", path, "b1");
        TestImages.RunIo(path, TestImages.RandomIoScript(8, Size, 30));
        Qemu.Img("snapshot", "-c", "s2", path);
        TestImages.RunIo(path, TestImages.RandomIoScript(9, Size, 30));
        var expected = Qemu.ToRaw(path, dir.Path);
        await using var node = await Qcow2Node.OpenAsync(path, new Qcow2OpenOptions { ReadOnly = true });
        var all = await TestImages.ReadAllAsync(node);
        Assert.True(Patterns.FirstDifference(expected, all) < 0, $"differs at {Patterns.FirstDifference(expected, all)}");
    }

    [RequiresToolsFact("qemu-img", "qemu-io")]
    public async Task Relative_backing_path_resolves_against_the_image_directory()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("sub"));
        Qemu.Img("create", "-f", "qcow2", dir.File("base.qcow2"), Size.ToString());
        Qemu.Io(dir.File("base.qcow2"), "write -P 9 0 1M");
        Qemu.Img("create", "-f", "qcow2", "-b", "../base.qcow2", "-F", "qcow2", dir.File("sub/top.qcow2"));
        var cwd = Environment.CurrentDirectory;
        await using var node = await Qcow2Node.OpenAsync(dir.File("sub/top.qcow2"), new Qcow2OpenOptions { ReadOnly = true });
        Assert.Equal("../base.qcow2", node.BackingFileName);
        var b = new byte[4];
        await node.ReadAsync(1000, b);
        Assert.Equal(new byte[] { 9, 9, 9, 9 }, b);
        Assert.Equal(cwd, Environment.CurrentDirectory);
    }
}
