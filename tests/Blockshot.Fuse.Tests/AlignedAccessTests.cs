using Blockshot.Core;
using Blockshot.Core.Buffers;
using Blockshot.Drivers;
using Blockshot.Fuse.FileSystem;

namespace Blockshot.Fuse.Tests;

/// <summary>Byte-granular I/O onto a node that wants 4 KiB-aligned requests, without the kernel.</summary>
public class AlignedAccessTests
{
    [Fact]
    public async Task Random_unaligned_requests_match_the_model_and_reach_the_node_aligned()
    {
        const int Size = 1 << 20;
        var node = new AlignedOnlyFilter(new MemoryNode(Size), 4096);
        using var pool = new BufferPool();
        var io = new AlignedAccess(node, pool);
        var model = new ReferenceModel(Size);
        var rng = new Random(3);
        var buffer = new byte[100_000];
        for (var op = 0; op < 2000; op++)
        {
            var length = rng.Next(1, rng.Next(2) == 0 ? 9000 : buffer.Length);
            var offset = rng.NextInt64(0, Size - length + 1);
            switch (rng.Next(4))
            {
                case 0:
                    Patterns.Fill(buffer.AsSpan(0, length), offset, op);
                    await io.WriteAsync(offset, buffer.AsMemory(0, length), IoFlags.None);
                    model.Write(offset, buffer.AsSpan(0, length));
                    break;
                case 1:
                    await io.WriteZeroesAsync(offset, length, IoFlags.MayTrim);
                    model.Zero(offset, length);
                    break;
                case 2:
                    await io.TrimAsync(offset, length, IoFlags.None);
                    model.Trim(offset, length, zeroes: false);
                    break;
                default:
                    await io.ReadAsync(offset, buffer.AsMemory(0, length));
                    model.Verify(offset, buffer.AsSpan(0, length), $"op {op}");
                    break;
            }
        }
        Assert.Equal(0, node.Violations);
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public async Task Concurrent_read_modify_writes_of_one_block_lose_nothing()
    {
        const int Writers = 8;
        const int Blocks = 16;
        var node = new AlignedOnlyFilter(new SlowFilter(new MemoryNode(Blocks * 4096), maxDelayMs: 1), 4096);
        using var pool = new BufferPool();
        var io = new AlignedAccess(node, pool);
        // Writer w owns bytes [w * 512, w * 512 + 512) of every block: all of them rewrite the same blocks.
        await Task.WhenAll(Enumerable.Range(0, Writers).Select(w => Task.Run(async () =>
        {
            for (var b = 0; b < Blocks; b++)
            {
                long offset = b * 4096 + w * 512;
                await io.WriteAsync(offset, Patterns.Make(512, offset, w), IoFlags.None);
            }
        })));
        var all = new byte[Blocks * 4096];
        await node.ReadAsync(0, all);
        for (var b = 0; b < Blocks; b++)
        {
            for (var w = 0; w < Writers; w++)
            {
                long offset = b * 4096 + w * 512;
                Assert.Equal(Patterns.Make(512, offset, w), all.AsSpan((int)offset, 512).ToArray());
            }
        }
        Assert.Equal(0, node.Violations);
    }
}
