using System.Runtime.InteropServices;
using Blockshot.Core;
using Blockshot.Core.Buffers;
using Microsoft.Win32.SafeHandles;

namespace Blockshot.Drivers.Tests.Raw;

/// <summary>
/// Mapping reads to the page cache for zero-copy sends: only data the cache holds whole, with no hole, of
/// a file opened buffered; and the handle a mapping holds outlives the node.
/// </summary>
public sealed partial class RawFileCachedReadTests : IDisposable
{
    private const string CacheStat = "cachestat(2)";
    private const int Size = 4 << 20;

    // On a disk filesystem: the page cache of tmpfs is the file itself and cannot be dropped.
    private readonly string _dir = Directory.CreateTempSubdirectory("blockshot-cached-").FullName;
    private readonly BufferPool _pool = new();

    public void Dispose()
    {
        Assert.Equal(0, _pool.Outstanding);
        _pool.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private string WriteImage(string name, byte[] data)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, data);
        return path;
    }

    [RequiresKernelFact(6, 5, CacheStat)]
    public async Task A_cached_data_range_maps_to_the_file_and_stays_readable_after_the_node_closes()
    {
        var data = Patterns.Make(Size, 0, 7);
        var path = WriteImage("cached.raw", data);
        CachedFileRange range;
        await using (var node = RawFileNode.Open(path, RawFiles.Options(_pool)))
        {
            await node.ReadAsync(0, new byte[Size]);
            Assert.True(node.TryMapCachedRead(12288, 256 << 10, out range), "a cached, fully written range was not mapped");
        }
        Assert.Equal((12288L, 256 << 10), (range.FileOffset, range.Length));
        Assert.False(range.File.IsClosed, "the node's close took the file from under a mapped range");
        var back = new byte[range.Length];
        Assert.Equal(back.Length, RandomAccess.Read(range.File, back, range.FileOffset));
        Assert.Equal(-1, Patterns.FirstDifference(data.AsSpan(12288, back.Length), back));
        range.Release();
        Assert.True(range.File.IsClosed, "releasing the last reference left the file open");
    }

    [RequiresKernelFact(6, 5, CacheStat)]
    public async Task A_range_the_page_cache_does_not_hold_is_not_mapped_until_it_is_read()
    {
        var path = WriteImage("cold.raw", Patterns.Make(Size, 0, 9));
        Assert.NotEqual("tmpfs", new DriveInfo(_dir).DriveFormat);
        await using var node = RawFileNode.Open(path, RawFiles.Options(_pool));
        await node.FlushAsync();
        using (var handle = File.OpenHandle(path))
        {
            Assert.Equal(0, FAdvise(handle, 0, 0, DontNeed));
        }
        Assert.False(node.TryMapCachedRead(1 << 20, 1 << 20, out _), "a range dropped from the page cache was mapped");
        await node.ReadAsync(1 << 20, new byte[1 << 20]);
        Assert.True(node.TryMapCachedRead(1 << 20, 1 << 20, out var range), "the range just read was not mapped");
        range.Release();
    }

    [RequiresKernelFact(6, 5, CacheStat)]
    public async Task A_range_with_a_hole_is_not_mapped()
    {
        var path = RawFiles.CreateSparse(Path.Combine(_dir, "sparse.raw"), Size);
        await using var node = RawFileNode.Open(path, RawFiles.Options(_pool));
        await node.WriteAsync(0, Patterns.Make(64 << 10, 0, 1), IoFlags.None);
        await node.WriteAsync(512 << 10, Patterns.Make(64 << 10, 512 << 10, 1), IoFlags.None);
        await node.ReadAsync(0, new byte[1 << 20]);
        Assert.False(node.TryMapCachedRead(0, 1 << 20, out _), "a range with a hole in it was mapped");
        Assert.True(node.TryMapCachedRead(0, 64 << 10, out var range), "the written start was not mapped");
        range.Release();
    }

    [Fact]
    public async Task Ranges_outside_the_node_and_direct_nodes_are_never_mapped()
    {
        var path = WriteImage("direct.raw", Patterns.Make(Size, 0, 3));
        await using (var buffered = RawFileNode.Open(path, RawFiles.Options(_pool)))
        {
            await buffered.ReadAsync(0, new byte[Size]);
            Assert.False(buffered.TryMapCachedRead(Size - 4096, 8192, out _));
            Assert.False(buffered.TryMapCachedRead(-4096, 8192, out _));
            Assert.False(buffered.TryMapCachedRead(0, 0, out _));
        }
        await using var direct = RawFileNode.Open(path, RawFiles.Options(_pool, direct: true));
        Assert.False(direct.TryMapCachedRead(0, 1 << 20, out _), "an O_DIRECT node's reads were mapped to the page cache");
    }

    private const int DontNeed = 4;

    [LibraryImport("libc", EntryPoint = "posix_fadvise")]
    private static partial int FAdvise(SafeFileHandle fd, long offset, long length, int advice);
}
