using System.Globalization;
using Blockshot.Core;
using Blockshot.Core.Buffers;

namespace Blockshot.Drivers.Tests.Raw;

public sealed class RawFileZeroTrimTests : IDisposable
{
    private const int Size = 8 << 20;

    // Splitting extents can cost the filesystem a block or two of extent tree, counted in st_blocks.
    private const int MetadataSlack = 64 << 10;

    private readonly TempDir _dir = new("blockshot-raw-zero");
    private readonly BufferPool _pool = new();

    public void Dispose()
    {
        Assert.Equal(0, _pool.Outstanding);
        _pool.Dispose();
        _dir.Dispose();
    }

    [RequiresToolsTheory("stat")]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Trim_punches_holes_that_free_blocks_and_read_as_zeros(bool direct)
    {
        var path = RawFiles.CreateSparse(_dir.File($"trim-{direct}.raw"), Size);
        await using var node = RawFileNode.Open(path, RawFiles.Options(_pool, direct));
        await FillAsync(node);
        var before = await StatBlocksAsync(path);
        Assert.Equal(before * 512, node.GetAllocatedBytes());
        Assert.True(before * 512 >= Size, $"only {before} blocks allocated after filling");

        await node.TrimAsync(1 << 20, 2 << 20, IoFlags.None);
        await node.TrimAsync((5 << 20) + 1, 4096 * 10, IoFlags.Fua); // unaligned: whole blocks inside are freed

        var after = await StatBlocksAsync(path);
        Assert.True((before - after) * 512 >= (2 << 20) + 4096 * 9 - MetadataSlack, $"blocks {before} -> {after}");
        Assert.Equal(after * 512, node.GetAllocatedBytes());
        var model = Model();
        model.Zero(1 << 20, 2 << 20);
        model.Zero((5 << 20) + 1, 4096 * 10);
        await VerifyAsync(node, model);
    }

    [RequiresToolsFact("stat")]
    public async Task Write_zeroes_with_may_trim_frees_blocks_and_without_keeps_them()
    {
        var path = RawFiles.CreateSparse(_dir.File("zero.raw"), Size);
        await using var node = RawFileNode.Open(path, RawFiles.Options(_pool));
        await FillAsync(node);
        var before = await StatBlocksAsync(path);

        await node.WriteZeroesAsync(1 << 20, 1 << 20, IoFlags.None);
        var kept = await StatBlocksAsync(path);
        Assert.True(kept >= before, $"blocks {before} -> {kept}"); // ZERO_RANGE on ext4 keeps the blocks (as unwritten extents)

        await node.WriteZeroesAsync(4 << 20, 1 << 20, IoFlags.MayTrim);
        var freed = await StatBlocksAsync(path);
        Assert.True((kept - freed) * 512 >= (1 << 20) - MetadataSlack, $"blocks {kept} -> {freed}");

        var model = Model();
        model.Zero(1 << 20, 1 << 20);
        model.Zero(4 << 20, 1 << 20);
        await VerifyAsync(node, model);
    }

    [Fact]
    public async Task Fast_zero_works_on_ext4()
    {
        var path = RawFiles.CreateSparse(_dir.File("fast.raw"), Size);
        await using var node = RawFileNode.Open(path, RawFiles.Options(_pool));
        Assert.True(node.Capabilities.Has(NodeFeatures.FastZero | NodeFeatures.WriteZeroes | NodeFeatures.Trim));
        await FillAsync(node);
        await node.WriteZeroesAsync(12345, 1 << 20, IoFlags.FastZero);
        var model = Model();
        model.Zero(12345, 1 << 20);
        await VerifyAsync(node, model);
    }

    [RequiresRootFact("mount", "umount")]
    public async Task Fast_zero_is_refused_on_tmpfs_and_leaves_the_data_alone()
    {
        await using var tmpfs = await TmpfsMount.CreateAsync(_dir, "64m");
        var path = RawFiles.CreateSparse(tmpfs.File("fast.raw"), Size);
        await using var node = RawFileNode.Open(path, RawFiles.Options(_pool));
        Assert.False(node.Capabilities.Has(NodeFeatures.FastZero));
        await FillAsync(node);
        var model = Model();

        var refused = await Assert.ThrowsAsync<BlockException>(() => node.WriteZeroesAsync(4096, 1 << 20, IoFlags.FastZero).AsTask());
        Assert.Equal(BlockError.NotSupported, refused.Error);
        await VerifyAsync(node, model);

        // Without FastZero the same request falls back to writing zeros…
        await node.WriteZeroesAsync(4096, 1 << 20, IoFlags.None);
        model.Zero(4096, 1 << 20);
        // …and with MayTrim a fast zero can punch a hole, which tmpfs can do.
        await node.WriteZeroesAsync(3 << 20, 1 << 20, IoFlags.FastZero | IoFlags.MayTrim);
        model.Zero(3 << 20, 1 << 20);
        await VerifyAsync(node, model);
        await node.DisposeAsync();
    }

    private static async Task FillAsync(BlockNode node)
    {
        await node.WriteAsync(0, Patterns.Make(Size, 0, 3), IoFlags.None);
        await node.FlushAsync();
    }

    private static ReferenceModel Model()
    {
        var model = new ReferenceModel(Size);
        model.Write(0, Patterns.Make(Size, 0, 3));
        return model;
    }

    private static async Task VerifyAsync(BlockNode node, ReferenceModel model)
    {
        var back = new byte[Size];
        await node.ReadAsync(0, back);
        model.Verify(0, back, "after zeroing");
    }

    /// <summary>Allocated 512-byte blocks as the stat tool reports them.</summary>
    private static async Task<long> StatBlocksAsync(string path) =>
        long.Parse((await ToolRun.CheckAsync("stat", "-c", "%b", path)).Trim(), CultureInfo.InvariantCulture);
}
