using System.Text.Json;
using Blockshot.Core;
using Blockshot.Core.Buffers;
using Blockshot.Core.Extents;

namespace Blockshot.Drivers.Tests.Raw;

public sealed class RawFileExtentTests : IDisposable
{
    private const long Size = 16 << 20;

    // Data islands (offset, length) in a 16 MiB sparse file; everything else is a hole.
    private static readonly (long Offset, int Length)[] Islands =
    [
        (0, 4096),
        (1 << 20, 192 << 10),
        ((3 << 20) + 4096, 4096),
        ((5 << 20) + 100, 10000),     // unaligned: the whole blocks it touches become data
        (8 << 20, 1 << 20),
        (Size - 8192, 8192),          // data up to the end of the file
    ];

    private readonly TempDir _dir = new("blockshot-raw-extents");
    private readonly BufferPool _pool = new();

    public void Dispose()
    {
        Assert.Equal(0, _pool.Outstanding);
        _pool.Dispose();
        _dir.Dispose();
    }

    [RequiresToolsFact("qemu-img")]
    public async Task Extents_of_a_sparse_file_match_qemu_img_map()
    {
        var path = await BuildIslandsAsync("islands.raw");

        List<(long Start, long Length, bool Data)> ours;
        await using (var node = RawFileNode.Open(path, RawFiles.Options(_pool, readOnly: true)))
        {
            ours = await RunsAsync(node, 0, node.Size);
        }
        var json = await ToolRun.CheckAsync("qemu-img", "map", "--output=json", "-f", "raw", path);
        var theirs = new List<(long Start, long Length, bool Data)>();
        foreach (var entry in JsonDocument.Parse(json).RootElement.EnumerateArray())
        {
            Append(theirs, entry.GetProperty("start").GetInt64(), entry.GetProperty("length").GetInt64(), entry.GetProperty("data").GetBoolean());
        }

        Assert.Equal(theirs, ours);
        Assert.Equal(2 * Islands.Length - 1, ours.Count); // the islands really are apart
    }

    [Fact]
    public async Task Holes_read_as_zeros_and_islands_are_data()
    {
        var path = await BuildIslandsAsync("zeros.raw");
        await using var node = RawFileNode.Open(path, RawFiles.Options(_pool, readOnly: true));
        Assert.True(node.Capabilities.Has(NodeFeatures.Extents));
        var runs = await RunsAsync(node, 0, node.Size);
        foreach (var (offset, length) in Islands)
        {
            Assert.Contains(runs, r => r.Data && r.Start <= offset && offset + length <= r.Start + r.Length);
        }
        var buffer = new byte[1 << 20];
        foreach (var run in runs.Where(r => !r.Data))
        {
            for (var pos = run.Start; pos < run.Start + run.Length; pos += buffer.Length)
            {
                var n = (int)Math.Min(buffer.Length, run.Start + run.Length - pos);
                await node.ReadAsync(pos, buffer.AsMemory(0, n));
                Assert.True(buffer.AsSpan(0, n).IndexOfAnyExcept((byte)0) < 0, $"hole at {pos} holds data");
            }
        }
    }

    [Fact]
    public async Task Queries_starting_inside_runs_and_capped_lists_continue_correctly()
    {
        var path = await BuildIslandsAsync("partial.raw");
        await using var node = RawFileNode.Open(path, RawFiles.Options(_pool, readOnly: true));
        var all = await RunsAsync(node, 0, node.Size);

        // One run at a time, from odd offsets, gives the same picture.
        var list = new ExtentList();
        var stitched = new List<(long, long, bool)>();
        long pos = 0;
        var step = 0;
        while (pos < node.Size)
        {
            list.Reset(pos, node.Size - pos, maxCount: 1);
            await node.GetExtentsAsync(pos, node.Size - pos, list);
            var e = Assert.Single(list.Items.ToArray());
            Assert.Equal(pos, e.Offset);
            var take = Math.Min(e.Length, 12345 + step++ * 777_777L);
            Append(stitched, pos, take, e.Flags == AllocationFlags.Data);
            pos += take;
        }
        Assert.Equal(all, stitched);
    }

    [Fact]
    public async Task Punched_and_zeroed_ranges_turn_into_holes()
    {
        var path = await BuildIslandsAsync("punch.raw");
        await using var node = RawFileNode.Open(path, RawFiles.Options(_pool));
        await node.TrimAsync(8 << 20, 256 << 10, IoFlags.None);
        await node.WriteZeroesAsync((8 << 20) + (512 << 10), 256 << 10, IoFlags.MayTrim);
        var runs = await RunsAsync(node, 8 << 20, 1 << 20);
        Assert.Equal(
            [
                (8L << 20, 256L << 10, false),
                ((8L << 20) + (256 << 10), 256L << 10, true),
                ((8L << 20) + (512 << 10), 256L << 10, false),
                ((8L << 20) + (768 << 10), 256L << 10, true),
            ],
            runs);
    }

    private async Task<string> BuildIslandsAsync(string name)
    {
        var path = RawFiles.CreateSparse(_dir.File(name), Size);
        await using var node = RawFileNode.Open(path, RawFiles.Options(_pool));
        foreach (var (offset, length) in Islands)
        {
            await node.WriteAsync(offset, Patterns.Make(length, offset, 1), IoFlags.None);
        }
        await node.FlushAsync();
        return path;
    }

    /// <summary>Data/hole runs of a range, adjacent runs of one kind merged.</summary>
    private static async Task<List<(long Start, long Length, bool Data)>> RunsAsync(BlockNode node, long offset, long length)
    {
        var runs = new List<(long, long, bool)>();
        var list = new ExtentList();
        var end = offset + length;
        while (offset < end)
        {
            list.Reset(offset, end - offset);
            await node.GetExtentsAsync(offset, end - offset, list);
            Assert.True(list.Count > 0);
            foreach (var e in list.Items)
            {
                Assert.True(e.Flags is AllocationFlags.Data or AllocationFlags.HoleZero, $"unexpected flags {e.Flags}");
                Append(runs, e.Offset, e.Length, e.Flags == AllocationFlags.Data);
            }
            offset = list.End;
        }
        return runs;
    }

    private static void Append(List<(long Start, long Length, bool Data)> runs, long start, long length, bool data)
    {
        if (runs.Count > 0 && runs[^1].Data == data && runs[^1].Start + runs[^1].Length == start)
        {
            runs[^1] = (runs[^1].Start, runs[^1].Length + length, data);
        }
        else
        {
            runs.Add((start, length, data));
        }
    }
}
