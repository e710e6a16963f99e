using Blockshot.Core;
using Blockshot.Core.Buffers;

namespace Blockshot.Drivers.Tests.Raw;

public sealed class RawFileNoSpaceTests : IDisposable
{
    private readonly TempDir _dir = new("blockshot-raw-enospc");
    private readonly BufferPool _pool = new();

    public void Dispose()
    {
        Assert.Equal(0, _pool.Outstanding);
        _pool.Dispose();
        _dir.Dispose();
    }

    [RequiresRootFact("mount", "umount")]
    public async Task Writing_past_the_filesystem_capacity_fails_with_no_space_and_reads_still_work()
    {
        await using var tmpfs = await TmpfsMount.CreateAsync(_dir, "1m");
        var path = RawFiles.CreateSparse(tmpfs.File("big.raw"), 8 << 20);
        await using var node = RawFileNode.Open(path, RawFiles.Options(_pool));
        const int Chunk = 128 << 10;

        var first = Patterns.Make(Chunk, 0, 1);
        await node.WriteAsync(0, first, IoFlags.None);
        BlockException? full = null;
        for (long offset = Chunk; offset < node.Size && full is null; offset += Chunk)
        {
            full = await Record(() => node.WriteAsync(offset, Patterns.Make(Chunk, offset, 1), IoFlags.None));
        }
        Assert.NotNull(full);
        Assert.Equal(BlockError.NoSpace, full.Error);

        // Emulated zeroing of a hole needs space too, and says so the same way.
        var zero = await Record(() => node.WriteZeroesAsync(6 << 20, 1 << 20, IoFlags.None));
        Assert.Equal(BlockError.NoSpace, zero?.Error);

        // The node still serves reads and flushes, and writes again once space is freed.
        var back = new byte[Chunk];
        await node.ReadAsync(0, back);
        Assert.Equal(first, back);
        await node.FlushAsync();
        await node.TrimAsync(Chunk, 7 * (1L << 20) - Chunk, IoFlags.None);
        await node.WriteAsync(Chunk, first, IoFlags.None);
        await node.ReadAsync(Chunk, back);
        Assert.Equal(first, back);
        await node.DisposeAsync();
    }

    private static async Task<BlockException?> Record(Func<ValueTask> request)
    {
        try
        {
            await request();
            return null;
        }
        catch (BlockException e)
        {
            return e;
        }
    }
}
