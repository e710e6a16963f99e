using Blockshot.Core;
using Blockshot.Core.Extents;
using Blockshot.Drivers;
using Blockshot.Fuse.Native;

namespace Blockshot.Fuse.Tests;

/// <summary>SEEK_DATA and SEEK_HOLE, fallocate punch and zero, and truncate.</summary>
public class SpaceTests
{
    private static readonly (long Offset, int Length)[] Islands =
    [
        (0, 4096),
        (64 << 10, 8192),
        (1 << 20, 4096 * 3),
        ((3 << 20) + 4096, 4096),
        ((8 << 20) - 4096, 4096),
    ];

    [RequiresRootFact]
    public async Task Seek_data_and_seek_hole_agree_with_the_node_extents()
    {
        const long Size = 8 << 20;
        var node = new MemoryNode(Size);
        foreach (var (offset, length) in Islands)
        {
            await node.WriteAsync(offset, Patterns.Make(length, offset, 5), IoFlags.None);
        }
        await using var scope = await ExportScope.StartAsync(node);
        using var file = File.OpenHandle(scope.File, FileMode.Open, FileAccess.Read);

        var extents = new ExtentList();
        extents.Reset(0, Size);
        await node.GetExtentsAsync(0, Size, extents);
        var probes = new List<long> { 0, 1, 4095, 4096, 5000, 65535, (64 << 10) + 1, 1 << 20, Size - 4097, Size - 4096, Size - 1 };
        foreach (var e in extents.Items)
        {
            probes.Add(e.Offset);
            probes.Add(e.End - 1);
        }
        foreach (var probe in probes.Distinct())
        {
            Assert.Equal(Expected(extents, probe, hole: false, Size), Posix.Seek(file, probe, Posix.SeekData));
            Assert.Equal(Expected(extents, probe, hole: true, Size), Posix.Seek(file, probe, Posix.SeekHole));
        }
        // Past the end there is neither data nor hole.
        Assert.Equal(-6 /* ENXIO */, Posix.Seek(file, Size, Posix.SeekData));
        Assert.Equal(-6 /* ENXIO */, Posix.Seek(file, Size, Posix.SeekHole));
    }

    [RequiresRootFact]
    public async Task Seek_data_after_the_last_island_reports_no_data()
    {
        var node = new MemoryNode(4 << 20);
        await node.WriteAsync(0, new byte[4096], IoFlags.None);
        await node.WriteAsync(0, Patterns.Make(4096, 0, 1), IoFlags.None);
        await using var scope = await ExportScope.StartAsync(node);
        using var file = File.OpenHandle(scope.File, FileMode.Open, FileAccess.Read);
        Assert.Equal(-6 /* ENXIO */, Posix.Seek(file, 8192, Posix.SeekData));
        Assert.Equal(4096, Posix.Seek(file, 0, Posix.SeekHole));
    }

    [RequiresRootFact("fallocate")]
    public async Task Punch_hole_trims_the_node_and_reads_back_zeros()
    {
        const int Size = 4 << 20;
        var node = new MemoryNode(Size);
        await node.WriteAsync(0, Patterns.Make(Size, 0, 9), IoFlags.None);
        await using var scope = await ExportScope.StartAsync(node);
        var before = node.AllocatedBytes;

        // Unaligned on both ends: whole pages are freed, the partial ones zeroed in place.
        await Run.ToolAsync("fallocate", "--punch-hole", "--offset", "100000", "--length", "1000000", scope.File);

        Assert.True(node.AllocatedBytes < before - 900_000, $"allocated {before} → {node.AllocatedBytes}");
        var back = new byte[Size];
        using (var file = File.OpenHandle(scope.File, FileMode.Open, FileAccess.Read))
        {
            Assert.Equal(Size, RandomAccess.Read(file, back, 0));
        }
        var expected = Patterns.Make(Size, 0, 9);
        expected.AsSpan(100000, 1000000).Clear();
        Assert.Equal(-1, Patterns.FirstDifference(expected, back));
        Assert.Equal(1, scope.Export.Counters.Trims);
    }

    [RequiresRootFact("fallocate")]
    public async Task Punch_hole_through_the_export_frees_blocks_of_a_sparse_raw_file()
    {
        const int Size = 8 << 20;
        using var dir = new TempDir("blockshot-fuse-punch");
        var path = dir.File("disk.raw");
        using (var f = File.Create(path))
        {
            f.SetLength(Size); // sparse: blocks exist only where written
        }
        await using var node = RawFileNode.Open(path);
        await node.WriteAsync(0, Patterns.Make(Size, 0, 3), IoFlags.None);
        await node.FlushAsync();
        var before = node.GetAllocatedBytes();
        Assert.True(before >= Size, $"the written file holds only {before} bytes");
        await using var scope = await ExportScope.StartAsync(node);

        await Run.ToolAsync("fallocate", "--punch-hole", "--offset", "1048576", "--length", "4194304", scope.File);

        var after = node.GetAllocatedBytes();
        Assert.True(after <= before - (4 << 20), $"allocated {before} → {after}: the punched 4 MiB was not freed");
        Assert.Equal(Size, new FileInfo(path).Length); // the size is kept
        var back = new byte[Size];
        using (var file = File.OpenHandle(scope.File, FileMode.Open, FileAccess.Read))
        {
            Assert.Equal(Size, RandomAccess.Read(file, back, 0));
        }
        var expected = Patterns.Make(Size, 0, 3);
        expected.AsSpan(1 << 20, 4 << 20).Clear();
        Assert.Equal(-1, Patterns.FirstDifference(expected, back));
    }

    [RequiresRootFact("fallocate")]
    public async Task Zero_range_zeroes_and_keeps_the_size()
    {
        const int Size = 2 << 20;
        var node = new MemoryNode(Size);
        await node.WriteAsync(0, Patterns.Make(Size, 0, 4), IoFlags.None);
        await using var scope = await ExportScope.StartAsync(node);

        await Run.ToolAsync("fallocate", "--zero-range", "--offset", "5000", "--length", "70000", scope.File);
        await Run.ToolAsync("fallocate", "--zero-range", "--keep-size", "--offset", $"{Size - 1000}", "--length", "1000000", scope.File);

        var expected = Patterns.Make(Size, 0, 4);
        expected.AsSpan(5000, 70000).Clear();
        expected.AsSpan(Size - 1000).Clear();
        var back = new byte[Size];
        await node.ReadAsync(0, back);
        Assert.Equal(-1, Patterns.FirstDifference(expected, back));
        Assert.Equal(Size, new FileInfo(scope.File).Length);
        Assert.Equal(2, scope.Export.Counters.Zeroes);
    }

    [RequiresRootFact("fallocate")]
    public async Task Fallocate_modes_that_change_the_size_are_refused()
    {
        const int Size = 1 << 20;
        await using var scope = await ExportScope.StartAsync(new MemoryNode(Size));
        var grow = await Run.ExitCodeAsync(TimeSpan.FromSeconds(30), "fallocate", "--offset", "0", "--length", $"{2 * Size}", scope.File);
        Assert.NotEqual(0, grow.Exit);
        Assert.Contains("not supported", grow.Output, StringComparison.OrdinalIgnoreCase);
        var collapse = await Run.ExitCodeAsync(TimeSpan.FromSeconds(30), "fallocate", "--collapse-range", "--offset", "0", "--length", "65536", scope.File);
        Assert.NotEqual(0, collapse.Exit);
        var zeroGrow = await Run.ExitCodeAsync(TimeSpan.FromSeconds(30), "fallocate", "--zero-range", "--offset", $"{Size - 4096}", "--length", "65536", scope.File);
        Assert.NotEqual(0, zeroGrow.Exit);
        // Allocating inside the device is a no-op that succeeds.
        await Run.ToolAsync("fallocate", "--offset", "0", "--length", "65536", scope.File);
        Assert.Equal(Size, new FileInfo(scope.File).Length);
    }

    [RequiresRootFact("truncate")]
    public async Task Truncate_resizes_a_node_that_can_and_is_refused_by_one_that_cannot()
    {
        var node = new MemoryNode(1 << 20);
        await using (var scope = await ExportScope.StartAsync(node))
        {
            await Run.ToolAsync("truncate", "--size", "3M", scope.File);
            Assert.Equal(3 << 20, node.Size);
            Assert.Equal(3 << 20, new FileInfo(scope.File).Length);
            using (var file = File.OpenHandle(scope.File, FileMode.Open, FileAccess.ReadWrite))
            {
                RandomAccess.Write(file, Patterns.Make(4096, (3 << 20) - 4096, 1), (3 << 20) - 4096);
                RandomAccess.SetLength(file, 512 << 10);
                Assert.Equal(512 << 10, RandomAccess.GetLength(file));
            }
            Assert.Equal(512 << 10, node.Size);
            Assert.Equal(2, scope.Export.Counters.Resizes);
        }

        var fixedSize = new FixedSizeFilter(new MemoryNode(1 << 20));
        await using (var scope = await ExportScope.StartAsync(fixedSize))
        {
            var refused = await Run.ExitCodeAsync(TimeSpan.FromSeconds(30), "truncate", "--size", "2M", scope.File);
            Assert.NotEqual(0, refused.Exit);
            Assert.Contains("not supported", refused.Output, StringComparison.OrdinalIgnoreCase);
            Assert.Equal(1 << 20, fixedSize.Size);
            Assert.Equal(1 << 20, new FileInfo(scope.File).Length);
            // Truncating to the current size changes nothing and succeeds.
            await Run.ToolAsync("truncate", "--size", "1M", scope.File);
        }
    }

    [RequiresRootFact]
    public async Task Open_with_truncate_does_not_shrink_the_device()
    {
        var node = new MemoryNode(1 << 20);
        await node.WriteAsync(0, Patterns.Make(4096, 0, 2), IoFlags.None);
        await using var scope = await ExportScope.StartAsync(node);
        // open(O_WRONLY | O_TRUNC), as a shell redirection does (.NET truncates with ftruncate instead).
        var fd = Libc.Open(scope.File, Libc.OWrOnly | Libc.OTrunc | Libc.OCloExec, 0);
        Assert.True(fd >= 0, $"open failed: errno {Libc.Errno}");
        unsafe
        {
            var data = Patterns.Make(100, 0, 7);
            fixed (byte* p = data)
            {
                Assert.Equal(100, (int)Libc.Write(fd, p, 100));
            }
        }
        Assert.Equal(0, Libc.Close(fd));
        Assert.Equal(1 << 20, node.Size);
        Assert.Equal(1 << 20, new FileInfo(scope.File).Length);
        var back = new byte[4096];
        await node.ReadAsync(0, back);
        var expected = Patterns.Make(4096, 0, 2);
        Patterns.Make(100, 0, 7).CopyTo(expected, 0);
        Assert.Equal(expected, back);
    }

    private static long Expected(ExtentList extents, long offset, bool hole, long size)
    {
        foreach (var e in extents.Items)
        {
            if (e.End <= offset)
            {
                continue;
            }
            if (((e.Flags & AllocationFlags.Zero) != 0) == hole)
            {
                return Math.Max(e.Offset, offset);
            }
        }
        return hole ? size : -6 /* ENXIO */;
    }
}
