using Blockshot.Core;
using Blockshot.Core.Buffers;

namespace Blockshot.Drivers.Tests.Raw;

/// <summary>
/// Copies inside the kernel (copy_file_range) for whole-image copies: within one file system, across two
/// (where the kernel refuses and a buffered copy takes over), past the end of the source (zeros), and the
/// raw node's side of it (its bytes map one to one; O_DIRECT and read-only nodes take no part).
/// </summary>
public sealed class FileRangeCopyTests : IDisposable
{
    private const int Size = 3 << 20;

    private readonly TempDir _dir = new("blockshot-range-copy");
    private readonly BufferPool _pool = new();

    public void Dispose()
    {
        Assert.Equal(0, _pool.Outstanding);
        _pool.Dispose();
        _dir.Dispose();
    }

    /// <summary>Opens both files and copies <paramref name="length"/> bytes from one to the other.</summary>
    private static async Task CopyFilesAsync(string from, long fromOffset, string to, long toOffset, long length)
    {
        using var source = File.OpenHandle(from, FileMode.Open, FileAccess.Read);
        using var target = File.OpenHandle(to, FileMode.OpenOrCreate, FileAccess.ReadWrite);
        await FileRangeCopy.CopyAsync(source, fromOffset, target, toOffset, length, Path.GetFileName(to));
    }

    [Fact]
    public async Task A_range_is_copied_byte_for_byte_to_another_offset_of_another_file()
    {
        var data = Patterns.Make(Size, 0, 3);
        var from = _dir.File("from.raw");
        File.WriteAllBytes(from, data);
        var to = RawFiles.CreateSparse(_dir.File("to.raw"), Size);
        await CopyFilesAsync(from, 4096 + 17, to, 65536, (2 << 20) + 5);
        var back = File.ReadAllBytes(to);
        Assert.Equal(-1, Patterns.FirstDifference(data.AsSpan(4096 + 17, (2 << 20) + 5), back.AsSpan(65536, (2 << 20) + 5)));
        Assert.False(back.AsSpan(0, 65536).ContainsAnyExcept((byte)0), "bytes before the copied range changed");
        Assert.False(back.AsSpan(65536 + (2 << 20) + 5).ContainsAnyExcept((byte)0), "bytes after the copied range changed");
    }

    [RequiresRootFact("mount", "umount")]
    public async Task A_copy_between_two_file_systems_falls_back_to_a_buffered_copy()
    {
        await using var tmpfs = await TmpfsMount.CreateAsync(_dir, "16m");
        var data = Patterns.Make(Size, 0, 4);
        var from = tmpfs.File("from.raw");
        File.WriteAllBytes(from, data);
        var to = RawFiles.CreateSparse(_dir.File("to.raw"), Size);
        await CopyFilesAsync(from, 0, to, 0, Size);
        Assert.Equal(-1, Patterns.FirstDifference(data, File.ReadAllBytes(to)));
    }

    [Fact]
    public async Task Bytes_past_the_end_of_the_source_are_written_as_zeros()
    {
        var data = Patterns.Make(100_000, 0, 5);
        var from = _dir.File("short.raw");
        File.WriteAllBytes(from, data);
        var to = _dir.File("to.raw");
        File.WriteAllBytes(to, Patterns.Make(Size, 0, 6)); // non-zero where the zeros must land
        await CopyFilesAsync(from, 0, to, 0, 1 << 20);
        var back = File.ReadAllBytes(to);
        Assert.Equal(-1, Patterns.FirstDifference(data, back.AsSpan(0, data.Length).ToArray()));
        Assert.False(back.AsSpan(data.Length, (1 << 20) - data.Length).ContainsAnyExcept((byte)0),
            "the part past the end of the source was not zeroed");
    }

    [Fact]
    public async Task A_buffered_raw_node_maps_its_own_bytes_and_takes_data_from_a_file()
    {
        var data = Patterns.Make(Size, 0, 8);
        var from = _dir.File("from.raw");
        File.WriteAllBytes(from, data);
        var to = RawFiles.CreateSparse(_dir.File("to.raw"), Size);
        await using var source = RawFileNode.Open(from, RawFiles.Options(_pool, readOnly: true));
        await using var target = RawFileNode.Open(to, RawFiles.Options(_pool));

        var map = await source.MapFileDataAsync(Size - 4096, 1 << 20);
        Assert.True(map.IsMapped);
        Assert.Equal((Size - 4096L, 4096), (map.FileOffset, map.Length)); // clipped at the end of the node
        Assert.False((await source.MapFileDataAsync(Size, 512)).IsMapped);

        var whole = await source.MapFileDataAsync(0, Size);
        Assert.True(await target.TryWriteFromFileAsync(0, whole, IoFlags.Fua));
        var back = new byte[Size];
        await target.ReadAsync(0, back);
        Assert.Equal(-1, Patterns.FirstDifference(data, back));

        var past = await Assert.ThrowsAsync<BlockException>(async () => await target.TryWriteFromFileAsync(Size - 512, whole.Slice(0, 4096), IoFlags.None));
        Assert.Equal(BlockError.NoSpace, past.Error);
    }

    [Fact]
    public async Task Direct_io_nodes_neither_map_nor_take_file_data_and_read_only_nodes_refuse_it()
    {
        var from = _dir.File("from.raw");
        File.WriteAllBytes(from, Patterns.Make(Size, 0, 9));
        var to = RawFiles.CreateSparse(_dir.File("to.raw"), Size);
        await using var source = RawFileNode.Open(from, RawFiles.Options(_pool, readOnly: true));
        var map = await source.MapFileDataAsync(0, 65536);

        await using (var direct = RawFileNode.Open(to, RawFiles.Options(_pool, direct: true)))
        {
            Assert.False((await direct.MapFileDataAsync(0, 65536)).IsMapped);
            Assert.False(await direct.TryWriteFromFileAsync(0, map, IoFlags.None));
        }
        Assert.False(File.ReadAllBytes(to).AsSpan().ContainsAnyExcept((byte)0), "a refused file write changed the target");

        await using var readOnly = RawFileNode.Open(to, RawFiles.Options(_pool, readOnly: true));
        var refused = await Assert.ThrowsAsync<BlockException>(async () => await readOnly.TryWriteFromFileAsync(0, map, IoFlags.None));
        Assert.Equal(BlockError.ReadOnly, refused.Error);
    }

    [Fact]
    public void A_file_view_shows_the_file_bytes_and_is_refused_past_the_end()
    {
        var data = Patterns.Make(Size, 0, 10);
        var path = _dir.File("view.raw");
        File.WriteAllBytes(path, data);
        using var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
        using (var view = FileView.TryMap(file, 12345, 1 << 20))
        {
            Assert.NotNull(view);
            Assert.Equal(-1, Patterns.FirstDifference(data.AsSpan(12345, 1 << 20), view.Span));
        }
        Assert.Null(FileView.TryMap(file, Size - 4096, 8192));
    }
}
