using Blockshot.Core;
using Microsoft.Win32.SafeHandles;

namespace Blockshot.Qcow2.Tests;

/// <summary>
/// The qcow2 side of whole-image copies inside the kernel: writes whose bytes come from another file
/// (<see cref="BlockNode.TryWriteFromFileAsync"/>) take every write path (in place, allocating, copy-on-write
/// head and tail, subclusters, preallocated space) and leave an image the peer finds clean and reads the
/// same; and only allocated data clusters map to the image file.
/// </summary>
public sealed class FileDataTests
{
    private const int Size = 6 << 20;

    public static TheoryData<string, int> Images() => new()
    {
        { "", 1 },
        { "cluster_size=512", 2 },
        { "compat=0.10", 3 },
        { "extended_l2=on,cluster_size=32k", 4 },
        { "preallocation=metadata", 5 },
    };

    [RequiresToolsTheory("qemu-img")]
    [MemberData(nameof(Images))]
    public async Task Writes_from_a_file_mixed_with_other_requests_check_clean_and_compare_equal(string options, int seed)
    {
        using var dir = new TempDir("qcow2-filedata");
        var sourceBytes = Patterns.Make(Size, 0, seed + 100);
        var sourcePath = dir.File("source.bin");
        File.WriteAllBytes(sourcePath, sourceBytes);
        var path = dir.File("img.qcow2");
        await Qcow2Image.CreateAsync(path, Size, CreateTests.Parse(options));
        var node = await Qcow2Node.OpenAsync(path);
        var model = new ReferenceModel(Size);
        var rng = new Random(seed);
        using (var source = File.OpenHandle(sourcePath))
        {
            for (var op = 0; op < 300; op++)
            {
                var length = rng.Next(4) switch
                {
                    0 => rng.Next(1, 700),
                    1 => 4096 * rng.Next(1, 20),
                    _ => rng.Next(1, 400_000),
                };
                var offset = rng.Next(3) == 0 ? Align.Down(rng.NextInt64(0, Size - length + 1), 4096) : rng.NextInt64(0, Size - length + 1);
                switch (rng.Next(10))
                {
                    case < 6:
                        {
                            var from = rng.Next(0, Size - length + 1);
                            Assert.True(await node.TryWriteFromFileAsync(offset, new FileDataRange(source, from, length), IoFlags.None));
                            model.Write(offset, sourceBytes.AsSpan(from, length).ToArray());
                            break;
                        }
                    case 6:
                        {
                            var data = Patterns.Make(length, offset, op);
                            await node.WriteAsync(offset, data, IoFlags.None);
                            model.Write(offset, data);
                            break;
                        }
                    case 7:
                        await node.WriteZeroesAsync(offset, length, rng.Next(2) == 0 ? IoFlags.MayTrim : IoFlags.None);
                        model.Zero(offset, length);
                        break;
                    case 8:
                        await node.TrimAsync(offset, length, IoFlags.None);
                        model.Trim(offset, length, zeroes: false);
                        break;
                    default:
                        {
                            var back = new byte[length];
                            await node.ReadAsync(offset, back);
                            model.Verify(offset, back, $"seed {seed} op {op}: read {offset}+{length}");
                            break;
                        }
                }
            }
        }
        await WriteInteropTests.VerifyWithPeerAsync(node, model, path, dir);
    }

    [Fact]
    public async Task Only_allocated_data_clusters_map_to_the_image_file_and_hold_the_guest_bytes()
    {
        using var dir = new TempDir("qcow2-filemap");
        var path = dir.File("img.qcow2");
        await Qcow2Image.CreateAsync(path, Size, CreateTests.Parse("cluster_size=64k"));
        await using var node = await Qcow2Node.OpenAsync(path);
        const int Cluster = 65536;
        var data = Patterns.Make(4 * Cluster, 0, 11);
        await node.WriteAsync(0, data, IoFlags.None);
        await node.WriteAsync(4 * Cluster, Patterns.Make(Cluster, 4 * Cluster, 12), IoFlags.None);
        await node.WriteZeroesAsync(4 * Cluster, Cluster, IoFlags.None); // a zero cluster
        await node.WriteCompressedAsync(6 * Cluster, Patterns.Make(Cluster, 6 * Cluster, 13)); // 5 stays unallocated

        var map = await node.MapFileDataAsync(100, 8 * Cluster);
        Assert.True(map.IsMapped);
        Assert.Equal(4 * Cluster - 100, map.Length); // the contiguous run of data clusters, not past it
        var onDisk = new byte[map.Length];
        using (var file = File.OpenHandle(path))
        {
            Assert.Equal(onDisk.Length, RandomAccess.Read(file, onDisk, map.FileOffset));
        }
        Assert.Equal(-1, Patterns.FirstDifference(data.AsSpan(100), onDisk));
        foreach (var cluster in new[] { 4, 5, 6 })
        {
            Assert.False((await node.MapFileDataAsync(cluster * (long)Cluster, Cluster)).IsMapped, $"cluster {cluster} was mapped");
        }
        Assert.False((await node.MapFileDataAsync(Size, 512)).IsMapped);
    }

    [Fact]
    public async Task A_read_only_image_refuses_writes_from_a_file()
    {
        using var dir = new TempDir("qcow2-filero");
        var path = dir.File("img.qcow2");
        await Qcow2Image.CreateAsync(path, Size, CreateTests.Parse(""));
        var sourcePath = dir.File("source.bin");
        File.WriteAllBytes(sourcePath, Patterns.Make(65536, 0, 1));
        await using var node = await Qcow2Node.OpenAsync(path, new Qcow2OpenOptions { ReadOnly = true });
        using SafeFileHandle source = File.OpenHandle(sourcePath);
        var e = await Assert.ThrowsAsync<BlockException>(async () => await node.TryWriteFromFileAsync(0, new FileDataRange(source, 0, 65536), IoFlags.None));
        Assert.Equal(BlockError.ReadOnly, e.Error);
    }
}
