using Blockshot.Core;
using Blockshot.Qcow2.Format;

namespace Blockshot.Qcow2.Tests;

public class CompressedWriteTests
{
    [RequiresToolsTheory("qemu-img")]
    [InlineData(CompressionType.Deflate, 65536, false)]
    [InlineData(CompressionType.Zstd, 65536, false)]
    [InlineData(CompressionType.Deflate, 512, false)]
    [InlineData(CompressionType.Zstd, 2 << 20, false)]
    [InlineData(CompressionType.Deflate, 32768, true)]
    public async Task Compressed_clusters_read_back_and_the_peer_reads_them_too(CompressionType type, int clusterSize, bool extendedL2)
    {
        using var dir = new TempDir();
        var path = dir.File("c.qcow2");
        var tailLength = clusterSize >= 4096 ? 1536 : clusterSize;
        var size = clusterSize * 40L + tailLength;
        await Qcow2Image.CreateAsync(path, size, new Qcow2CreateOptions { ClusterSize = clusterSize, CompressionType = type, ExtendedL2 = extendedL2 });
        var node = await Qcow2Node.OpenAsync(path);
        var model = new ReferenceModel((int)size);
        var rng = new Random(clusterSize);
        for (var i = 0; i < 40; i += 1 + (i % 3))
        {
            var data = new byte[clusterSize];
            if (i % 7 == 3)
            {
                rng.NextBytes(data);
            }
            else
            {
                for (var k = 0; k < data.Length; k++)
                {
                    data[k] = (byte)((k / 100) + i);
                }
            }
            await node.WriteCompressedAsync((long)i * clusterSize, data);
            model.Write((long)i * clusterSize, data);
        }
        // The last, partial cluster.
        var tail = Patterns.Make(tailLength, 40L * clusterSize, 9);
        for (var k = 0; k < tailLength * 2 / 3; k++)
        {
            tail[k] = 7;
        }
        await node.WriteCompressedAsync(40L * clusterSize, tail);
        model.Write(40L * clusterSize, tail);
        // Rewrite one compressed cluster compressed again and overwrite part of another plainly.
        var again = new byte[clusterSize];
        again.AsSpan().Fill(0x5a);
        await node.WriteCompressedAsync(0, again);
        model.Write(0, again);
        var patch = Patterns.Make(300, clusterSize + 100, 1);
        await node.WriteAsync(clusterSize + 100, patch, IoFlags.None);
        model.Write(clusterSize + 100, patch);
        await WriteInteropTests.VerifyWithPeerAsync(node, model, path, dir);
        var (_, report, _) = Qemu.Check(path);
        Assert.True(report.TryGetProperty("compressed-clusters", out var compressed) && compressed.GetInt32() > 10);
    }

    [Fact]
    public async Task Compressed_writes_must_be_whole_aligned_clusters()
    {
        using var dir = new TempDir();
        var path = dir.File("c.qcow2");
        await Qcow2Image.CreateAsync(path, 1 << 20);
        await using var node = await Qcow2Node.OpenAsync(path);
        await Assert.ThrowsAsync<BlockException>(() => node.WriteCompressedAsync(512, new byte[65536]).AsTask());
        await Assert.ThrowsAsync<BlockException>(() => node.WriteCompressedAsync(0, new byte[4096]).AsTask());
    }
}

public class CompressedZeroRegressionTests
{
    [RequiresToolsTheory("qemu-img")]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Zeroing_part_of_a_compressed_cluster_zeroes_it(bool extendedL2)
    {
        // Found by the crash test: with extended L2 entries a subcluster-aligned zeroing of part of a
        // compressed cluster was silently skipped.
        using var dir = new TempDir();
        var path = dir.File("c.qcow2");
        await Qcow2Image.CreateAsync(path, 1 << 20, new Qcow2CreateOptions { ClusterSize = 32768, ExtendedL2 = extendedL2 });
        var node = await Qcow2Node.OpenAsync(path);
        var model = new ReferenceModel(1 << 20);
        var data = new byte[32768];
        data.AsSpan().Fill(0x68);
        await node.WriteCompressedAsync(294912, data);
        model.Write(294912, data);
        await node.WriteZeroesAsync(278218, 28672, IoFlags.MayTrim);
        model.Zero(278218, 28672);
        await node.WriteZeroesAsync(294912 + 4096, 2048, IoFlags.None);
        model.Zero(294912 + 4096, 2048);
        await WriteInteropTests.VerifyWithPeerAsync(node, model, path, dir);
    }
}
