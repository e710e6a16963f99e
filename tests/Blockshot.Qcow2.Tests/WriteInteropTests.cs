using Blockshot.Core;

namespace Blockshot.Qcow2.Tests;

/// <summary>
/// Random write/zero/trim/flush mixes through our node on images of many shapes, checked against a
/// reference model; afterwards the peer tool must find the image clean and read it exactly as we do.
/// </summary>
public class WriteInteropTests
{
    private const int Size = 6 << 20;

    internal static async Task RandomOpsAsync(BlockNode node, ReferenceModel model, int seed, int count, bool concurrent = false)
    {
        var rng = new Random(seed);
        var size = (int)node.Size;
        var pending = new List<Task>();
        var inFlight = new List<(long Offset, int Length)>();
        for (var op = 0; op < count; op++)
        {
            var length = rng.Next(5) switch
            {
                0 => rng.Next(1, 700),
                1 => 4096 * rng.Next(1, 20),
                2 => 65536 * rng.Next(1, 5),
                _ => rng.Next(1, 400_000),
            };
            length = Math.Min(length, size);
            var offset = rng.Next(3) == 0 ? Align.Down(rng.NextInt64(0, size - length + 1), 4096) : rng.NextInt64(0, size - length + 1);
            var kind = rng.Next(20);
            if (concurrent && kind < 10)
            {
                // Concurrent writes are kept byte-disjoint: the outcome of overlapping writes in flight
                // together is undefined for a block device, so the model could not be exact. They may
                // still share clusters, which is what exercises concurrent allocation.
                if (inFlight.Exists(r => r.Offset < offset + length && offset < r.Offset + r.Length))
                {
                    await Task.WhenAll(pending);
                    pending.Clear();
                    inFlight.Clear();
                }
                var data = Patterns.Make(length, offset, op + seed * 7919);
                model.Write(offset, data);
                pending.Add(node.WriteAsync(offset, data, IoFlags.None).AsTask());
                inFlight.Add((offset, length));
                if (pending.Count >= 8 || rng.Next(4) == 0)
                {
                    await Task.WhenAll(pending);
                    pending.Clear();
                    inFlight.Clear();
                }
                continue;
            }
            await Task.WhenAll(pending);
            pending.Clear();
            inFlight.Clear();
            switch (kind)
            {
                case < 11:
                    {
                        var data = Patterns.Make(length, offset, op + seed * 7919);
                        await node.WriteAsync(offset, data, rng.Next(10) == 0 ? IoFlags.Fua : IoFlags.None);
                        model.Write(offset, data);
                        break;
                    }
                case < 14:
                    {
                        var back = new byte[length];
                        await node.ReadAsync(offset, back);
                        model.Verify(offset, back, $"seed {seed} op {op}: read {offset}+{length}");
                        break;
                    }
                case < 16:
                    await node.WriteZeroesAsync(offset, length, rng.Next(2) == 0 ? IoFlags.MayTrim : IoFlags.None);
                    model.Zero(offset, length);
                    break;
                case < 18:
                    await node.TrimAsync(offset, length, IoFlags.None);
                    model.Trim(offset, length, zeroes: false);
                    break;
                default:
                    await node.FlushAsync();
                    break;
            }
        }
        await Task.WhenAll(pending);
    }

    /// <summary>Reads the node, checks the model, closes, then runs the peer's check and compare.</summary>
    internal static async Task VerifyWithPeerAsync(Qcow2Node node, ReferenceModel model, string path, TempDir dir)
    {
        var all = await TestImages.ReadAllAsync(node);
        model.Verify(0, all, "final content");
        await node.DisposeAsync();
        var (rc, _, text) = Qemu.Check(path);
        Assert.True(rc == 0, $"qemu-img check exited {rc}: {text}");
        var raw = dir.File("expected.raw");
        File.WriteAllBytes(raw, all);
        var cmp = Qemu.Run("qemu-img", "compare", "-f", "qcow2", "-F", "raw", path, raw);
        Assert.True(cmp.ExitCode == 0, "qemu-img compare: " + cmp.All);
        File.Delete(raw);
        var ours = System.Text.Json.Nodes.JsonNode.Parse((await Qcow2Image.InfoAsync(path)).ToJson());
        var theirs = System.Text.Json.Nodes.JsonNode.Parse(Qemu.Img("info", "--output=json", path));
        Assert.True(System.Text.Json.Nodes.JsonNode.DeepEquals(theirs, ours), $"info differs:\n{theirs}\n{ours}");
    }

    public static TheoryData<string, int> FreshImages() => new()
    {
        { "", 1 },
        { "cluster_size=512", 2 },
        { "cluster_size=4k,refcount_bits=2", 3 },
        { "cluster_size=2M", 4 },
        { "compat=0.10", 5 },
        { "extended_l2=on,cluster_size=32k", 6 },
        { "lazy_refcounts=on", 7 },
        { "refcount_bits=64,cluster_size=1k", 8 },
        { "preallocation=metadata", 9 },
        { "preallocation=falloc,extended_l2=on", 10 },
    };

    [RequiresToolsTheory("qemu-img")]
    [MemberData(nameof(FreshImages))]
    public async Task Random_mix_on_our_images_checks_clean_and_compares_equal(string options, int seed)
    {
        using var dir = new TempDir();
        var path = dir.File("img.qcow2");
        await Qcow2Image.CreateAsync(path, Size, CreateTests.Parse(options));
        var node = await Qcow2Node.OpenAsync(path);
        var model = new ReferenceModel(Size);
        await RandomOpsAsync(node, model, seed, 400, concurrent: seed % 2 == 0);
        await VerifyWithPeerAsync(node, model, path, dir);
    }

    [RequiresToolsTheory("qemu-img", "qemu-io")]
    [InlineData("compat=1.1", 11)]
    [InlineData("compat=0.10,cluster_size=8k", 12)]
    [InlineData("compat=1.1,extended_l2=on,cluster_size=16k", 13)]
    [InlineData("compat=1.1,cluster_size=1k,refcount_bits=8", 14)]
    public async Task Random_mix_on_peer_written_images(string options, int seed)
    {
        using var dir = new TempDir();
        var path = dir.File("img.qcow2");
        Qemu.Img("create", "-f", "qcow2", "-o", options, path, Size.ToString());
        TestImages.RunIo(path, TestImages.RandomIoScript(seed, Size, 40));
        var model = new ReferenceModel(Size);
        model.Write(0, Qemu.ToRaw(path, dir.Path));
        var node = await Qcow2Node.OpenAsync(path);
        await RandomOpsAsync(node, model, seed, 300);
        await VerifyWithPeerAsync(node, model, path, dir);
    }

    [RequiresToolsTheory("qemu-img", "qemu-io")]
    [InlineData("", 21)]
    [InlineData("extended_l2=on,cluster_size=64k", 22)]
    [InlineData("compat=0.10", 23)]
    [InlineData("cluster_size=4k", 24)]
    public async Task Random_mix_over_a_backing_chain(string options, int seed)
    {
        using var dir = new TempDir();
        var basePath = dir.File("base.qcow2");
        Qemu.Img("create", "-f", "qcow2", basePath, (Size - 300_000).ToString());
        TestImages.RunIo(basePath, TestImages.RandomIoScript(seed, Size - 300_000, 40));
        var path = dir.File("top.qcow2");
        await Qcow2Image.CreateAsync(path, Size, CreateTests.Parse(options) with { BackingFile = "base.qcow2", BackingFormat = "qcow2" });
        var model = new ReferenceModel(Size);
        model.Write(0, Qemu.ToRaw(path, dir.Path));
        var node = await Qcow2Node.OpenAsync(path);
        await RandomOpsAsync(node, model, seed, 300);
        await VerifyWithPeerAsync(node, model, path, dir);
    }

    [RequiresToolsTheory("qemu-img", "qemu-io")]
    [InlineData("zlib", 31)]
    [InlineData("zstd", 32)]
    public async Task Random_mix_over_compressed_clusters(string compression, int seed)
    {
        using var dir = new TempDir();
        var src = dir.File("src.qcow2");
        Qemu.Img("create", "-f", "qcow2", src, Size.ToString());
        TestImages.RunIo(src, TestImages.RandomIoScript(seed, Size, 40, zeroes: false, discards: false));
        var path = dir.File("c.qcow2");
        Qemu.Img("convert", "-c", "-O", "qcow2", "-o", "compression_type=" + compression, src, path);
        var model = new ReferenceModel(Size);
        model.Write(0, Qemu.ToRaw(path, dir.Path));
        var node = await Qcow2Node.OpenAsync(path);
        await RandomOpsAsync(node, model, seed, 300);
        await VerifyWithPeerAsync(node, model, path, dir);
    }

    [RequiresToolsTheory("qemu-img", "qemu-io")]
    [InlineData("", 41)]
    [InlineData("extended_l2=on", 42)]
    [InlineData("compat=0.10,cluster_size=4k", 43)]
    public async Task Writes_after_a_peer_snapshot_leave_the_snapshot_intact(string options, int seed)
    {
        using var dir = new TempDir();
        var path = dir.File("img.qcow2");
        Qemu.Img(options.Length > 0 ? ["create", "-f", "qcow2", "-o", options, path, Size.ToString()] : ["create", "-f", "qcow2", path, Size.ToString()]);
        TestImages.RunIo(path, TestImages.RandomIoScript(seed, Size, 40));
        var before = Qemu.ToRaw(path, dir.Path);
        Qemu.Img("snapshot", "-c", "s1", path);
        var model = new ReferenceModel(Size);
        model.Write(0, before);
        var node = await Qcow2Node.OpenAsync(path);
        await RandomOpsAsync(node, model, seed, 300);
        await VerifyWithPeerAsync(node, model, path, dir);
        Qemu.Img("snapshot", "-a", "s1", path);
        Assert.Equal(before, Qemu.ToRaw(path, dir.Path));
        Assert.Equal(0, Qemu.Check(path).ExitCode);
    }

    [RequiresToolsFact("qemu-img")]
    public async Task Concurrent_writers_to_the_same_unallocated_cluster_do_not_lose_data()
    {
        using var dir = new TempDir();
        var path = dir.File("img.qcow2");
        await Qcow2Image.CreateAsync(path, Size, new Qcow2CreateOptions { ClusterSize = 1 << 20 });
        var node = await Qcow2Node.OpenAsync(path);
        var model = new ReferenceModel(Size);
        var tasks = new List<Task>();
        for (var i = 0; i < 64; i++)
        {
            // 64 writers of disjoint 4 KiB pieces all inside the first two clusters.
            var offset = (long)i * 32768;
            var data = Patterns.Make(4096, offset, i);
            model.Write(offset, data);
            tasks.Add(Task.Run(() => node.WriteAsync(offset, data, IoFlags.None).AsTask()));
        }
        await Task.WhenAll(tasks);
        await VerifyWithPeerAsync(node, model, path, dir);
    }
}

public class ConcurrencyStressTests
{
    [RequiresToolsTheory("qemu-img", "qemu-io")]
    [InlineData("cluster_size=1M", false)]
    [InlineData("", true)]
    [InlineData("extended_l2=on,cluster_size=128k", true)]
    public async Task Writers_sharing_clusters_lose_nothing(string options, bool withBacking)
    {
        const int Size = 8 << 20;
        const int Workers = 8;
        const int Stripe = 1_000_003; // Odd: neighbouring workers share clusters.
        using var dir = new TempDir();
        var path = dir.File("img.qcow2");
        var create = CreateTests.Parse(options);
        var baseline = new byte[Size];
        if (withBacking)
        {
            Qemu.Img("create", "-f", "qcow2", dir.File("base.qcow2"), Size.ToString());
            Qemu.Io(dir.File("base.qcow2"), "write -P 0x33 0 8M");
            baseline.AsSpan().Fill(0x33);
            create = create with { BackingFile = "base.qcow2", BackingFormat = "qcow2" };
        }
        await Qcow2Image.CreateAsync(path, Size, create);
        var node = await Qcow2Node.OpenAsync(path);
        var expected = (byte[])baseline.Clone();
        var tasks = Enumerable.Range(0, Workers).Select(w => Task.Run(async () =>
        {
            var rng = new Random(w);
            var start = (long)w * Stripe;
            for (var i = 0; i < 150; i++)
            {
                var length = rng.Next(1, 70_000);
                var offset = start + rng.NextInt64(0, Stripe - length);
                switch (rng.Next(10))
                {
                    case < 7:
                        var data = Patterns.Make(length, offset, w * 1000 + i);
                        await node.WriteAsync(offset, data, IoFlags.None);
                        lock (expected)
                        {
                            data.CopyTo(expected, offset);
                        }
                        break;
                    case < 9:
                        await node.WriteZeroesAsync(offset, length, rng.Next(2) == 0 ? IoFlags.MayTrim : IoFlags.None);
                        lock (expected)
                        {
                            expected.AsSpan((int)offset, length).Clear();
                        }
                        break;
                    default:
                        await node.FlushAsync();
                        break;
                }
            }
        })).ToArray();
        await Task.WhenAll(tasks);
        var model = new ReferenceModel(Size);
        model.Write(0, expected);
        await WriteInteropTests.VerifyWithPeerAsync(node, model, path, dir);
    }
}
