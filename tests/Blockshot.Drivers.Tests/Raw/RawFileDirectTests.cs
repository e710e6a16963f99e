using System.Runtime.InteropServices;
using Blockshot.Core;
using Blockshot.Core.Buffers;

namespace Blockshot.Drivers.Tests.Raw;

public sealed class RawFileDirectTests : IDisposable
{
    private readonly TempDir _dir = new("blockshot-raw-direct");
    private readonly BufferPool _pool = new();

    public void Dispose()
    {
        Assert.Equal(0, _pool.Outstanding);
        _pool.Dispose();
        _dir.Dispose();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Direct_option_decides_O_DIRECT_on_the_descriptor(bool direct)
    {
        var path = RawFiles.CreateSparse(_dir.File($"flags-{direct}.raw"), 1 << 20);
        await using var node = RawFileNode.Open(path, RawFiles.Options(_pool, direct));
        var flags = OpenFlagsOf(path);
        var oDirect = RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 0x10000 : 0x4000;
        Assert.Equal(direct, (flags & oDirect) != 0);
        Assert.Equal(direct, node.IsDirect);
        Assert.True(direct ? node.DirectAlignment >= 512 : node.DirectAlignment == 1, $"alignment {node.DirectAlignment}");
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(511, 2)]
    [InlineData(4095, 2)]
    [InlineData(100, 10000)]
    [InlineData(8191, (1 << 20) + 3)]
    [InlineData(4096, 4096)]
    [InlineData(0, 3 << 20)]
    public async Task Unaligned_requests_and_unaligned_memory_round_trip(long offset, int length)
    {
        var path = RawFiles.CreateSparse(_dir.File("unaligned.raw"), 4 << 20);
        var data = Patterns.Make(length, offset, 9);
        await using (var node = RawFileNode.Open(path, RawFiles.Options(_pool, direct: true)))
        {
            // Memory one byte off any alignment, whatever the offset.
            using var staging = _pool.Rent(length + 1);
            data.CopyTo(staging.Span[1..]);
            await node.WriteAsync(offset, staging.Memory[1..], IoFlags.None);

            var back = new byte[length + 1];
            await node.ReadAsync(offset, back.AsMemory(1));
            Assert.Equal(-1, Patterns.FirstDifference(data, back.AsSpan(1)));
            Assert.Equal(0, node.RangeLocksHeld);
        }

        // What reached the file, read without the driver.
        var file = await File.ReadAllBytesAsync(path);
        Assert.Equal(4 << 20, file.Length);
        Assert.Equal(-1, Patterns.FirstDifference(data, file.AsSpan((int)offset, length)));
        Assert.True(file.AsSpan(0, (int)offset).IndexOfAnyExcept((byte)0) < 0, "bytes before the write changed");
        Assert.True(file.AsSpan((int)offset + length).IndexOfAnyExcept((byte)0) < 0, "bytes after the write changed");
    }

    [Fact]
    public async Task Concurrent_unaligned_writes_to_disjoint_parts_of_one_block_lose_nothing()
    {
        var path = RawFiles.CreateSparse(_dir.File("rmw.raw"), 1 << 20);
        await using var node = RawFileNode.Open(path, RawFiles.Options(_pool, direct: true));
        const long Block = 8192;

        // 32 writers of 128 bytes inside one 4 KiB block, and 7 writers of 1000 bytes that straddle
        // sector and block boundaries, each rewriting its own bytes again and again.
        var ranges = new List<(long Offset, int Length)>();
        for (var i = 0; i < 32; i++)
        {
            ranges.Add((Block + i * 128, 128));
        }
        for (var i = 0; i < 7; i++)
        {
            ranges.Add((Block + 4096 + 300 + i * 1000, 1000));
        }
        const int Rounds = 40;
        await Task.WhenAll(ranges.Select((r, w) => Task.Run(async () =>
        {
            for (var round = 0; round < Rounds; round++)
            {
                await node.WriteAsync(r.Offset, Patterns.Make(r.Length, r.Offset, w * 1000 + round), IoFlags.None);
            }
        })));

        Assert.Equal(0, node.RangeLocksHeld);
        for (var w = 0; w < ranges.Count; w++)
        {
            var (offset, length) = ranges[w];
            var back = new byte[length];
            await node.ReadAsync(offset, back);
            Assert.True(Patterns.FirstDifference(Patterns.Make(length, offset, w * 1000 + Rounds - 1), back) == -1,
                $"writer {w} at {offset}+{length} lost its last write");
        }
    }

    [Fact]
    public async Task Partial_block_zeroes_and_trims_keep_the_neighbours()
    {
        var path = RawFiles.CreateSparse(_dir.File("zero.raw"), 1 << 20);
        await using var node = RawFileNode.Open(path, RawFiles.Options(_pool, direct: true));
        var data = Patterns.Make(1 << 20, 0, 4);
        await node.WriteAsync(0, data, IoFlags.None);
        await node.WriteZeroesAsync(100, 5000, IoFlags.None);
        await node.WriteZeroesAsync(20000, 70001, IoFlags.MayTrim);
        await node.TrimAsync(200001, 9000, IoFlags.None);
        var model = new ReferenceModel(1 << 20);
        model.Write(0, data);
        model.Zero(100, 5000);
        model.Zero(20000, 70001);
        model.Zero(200001, 9000);
        var back = new byte[1 << 20];
        await node.ReadAsync(0, back);
        model.Verify(0, back, "after partial-block zeroes and trims");
    }

    [Fact]
    public async Task Writing_the_last_partial_block_keeps_an_odd_file_size()
    {
        const long Size = (1 << 20) + 1000;
        var path = RawFiles.CreateSparse(_dir.File("odd.raw"), Size);
        await using (var node = RawFileNode.Open(path, RawFiles.Options(_pool, direct: true)))
        {
            await node.WriteAsync(Size - 3, new byte[] { 7, 8, 9 }, IoFlags.Fua);
            await node.WriteZeroesAsync(Size - 2000, 1000, IoFlags.None);
            Assert.Equal(Size, node.Size);
        }
        var file = await File.ReadAllBytesAsync(path);
        Assert.Equal(Size, file.Length);
        Assert.Equal(new byte[] { 7, 8, 9 }, file[^3..]);
    }

    [Fact]
    public async Task Resizing_a_direct_node_to_an_odd_size_and_writing_its_tail_keeps_that_size()
    {
        var path = RawFiles.CreateSparse(_dir.File("resize.raw"), 1 << 20);
        await using var node = RawFileNode.Open(path, RawFiles.Options(_pool, direct: true));
        const long Odd = (2 << 20) + 333;
        var writes = Enumerable.Range(0, 16).Select(i => node.WriteAsync(i * 4096 + 1, Patterns.Make(100, i, i), IoFlags.None).AsTask());
        await Task.WhenAll(writes.Append(node.ResizeAsync(Odd).AsTask()));
        await node.WriteAsync(Odd - 10, Patterns.Make(10, Odd, 1), IoFlags.None);
        Assert.Equal(Odd, node.Size);
        Assert.Equal(Odd, new FileInfo(path).Length);
        var tail = new byte[10];
        await node.ReadAsync(Odd - 10, tail);
        Assert.Equal(Patterns.Make(10, Odd, 1), tail);
        Assert.Equal(0, node.RangeLocksHeld);
    }

    /// <summary>The open flags of this process's descriptor for <paramref name="path"/>, from /proc/self/fdinfo.</summary>
    private static int OpenFlagsOf(string path)
    {
        foreach (var link in Directory.GetFiles("/proc/self/fd"))
        {
            if (new FileInfo(link).LinkTarget != path)
            {
                continue;
            }
            var flags = File.ReadAllLines($"/proc/self/fdinfo/{Path.GetFileName(link)}")
                .Single(l => l.StartsWith("flags:", StringComparison.Ordinal))["flags:".Length..].Trim();
            return Convert.ToInt32(flags, 8);
        }
        throw new InvalidOperationException($"no descriptor of this process is open on {path}");
    }
}
