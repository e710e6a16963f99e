using System.IO.MemoryMappedFiles;
using Blockshot.Core;
using Blockshot.Drivers;

namespace Blockshot.Fuse.Tests;

/// <summary>Plain file I/O on the mounted file, checked against a reference model.</summary>
public class FileIoTests
{
    [RequiresRootFact]
    public async Task Random_preads_and_pwrites_match_the_reference_model()
    {
        const int Size = 8 << 20;
        var node = new MemoryNode(Size);
        await using var scope = await ExportScope.StartAsync(node);
        var model = new ReferenceModel(Size);
        var rng = new Random(4242);
        var buffer = new byte[3 << 20];
        using (var file = File.OpenHandle(scope.File, FileMode.Open, FileAccess.ReadWrite))
        {
            Assert.Equal(Size, RandomAccess.GetLength(file));
            for (var op = 0; op < 600; op++)
            {
                var length = rng.Next(4) switch
                {
                    0 => rng.Next(1, 600),
                    1 => 4096 * rng.Next(1, 64),
                    2 => rng.Next(1, buffer.Length),
                    _ => rng.Next(1, 70000),
                };
                var offset = rng.Next(3) == 0 ? rng.NextInt64(0, Size - length + 1) & ~4095L : rng.NextInt64(0, Size - length + 1);
                if (rng.Next(2) == 0)
                {
                    Patterns.Fill(buffer.AsSpan(0, length), offset, op);
                    RandomAccess.Write(file, buffer.AsSpan(0, length), offset);
                    model.Write(offset, buffer.AsSpan(0, length));
                }
                else
                {
                    var n = RandomAccess.Read(file, buffer.AsSpan(0, length), offset);
                    Assert.Equal(length, n);
                    model.Verify(offset, buffer.AsSpan(0, n), $"op {op}: read {offset}+{length}");
                }
            }
        }

        // The node holds what the file showed.
        var all = new byte[Size];
        await node.ReadAsync(0, all);
        model.Verify(0, all, "node after the run");
        Assert.True(scope.Export.Counters.Writes > 0 && scope.Export.Counters.Reads > 0);
        Assert.Equal(0, scope.Export.Counters.Errors);
    }

    [RequiresRootFact]
    public async Task Concurrent_readers_and_writers_on_disjoint_stripes_see_their_own_data()
    {
        const int Workers = 8;
        const int Stripe = 1 << 20;
        var node = new SlowFilter(new MemoryNode(Workers * Stripe));
        await using var scope = await ExportScope.StartAsync(node, new FuseExportOptions { Readers = 3 });
        var tasks = Enumerable.Range(0, Workers).Select(w => Task.Run(() =>
        {
            using var file = File.OpenHandle(scope.File, FileMode.Open, FileAccess.ReadWrite);
            var rng = new Random(w);
            var mine = new byte[Stripe];
            var buffer = new byte[200_000];
            for (var i = 0; i < 150; i++)
            {
                var length = rng.Next(1, buffer.Length);
                var offset = rng.Next(0, Stripe - length);
                var at = (long)w * Stripe + offset;
                if (rng.Next(3) == 0)
                {
                    Assert.Equal(length, RandomAccess.Read(file, buffer.AsSpan(0, length), at));
                    Assert.Equal(-1, Patterns.FirstDifference(mine.AsSpan(offset, length), buffer.AsSpan(0, length)));
                }
                else
                {
                    Patterns.Fill(buffer.AsSpan(0, length), at, w * 1000 + i);
                    RandomAccess.Write(file, buffer.AsSpan(0, length), at);
                    buffer.AsSpan(0, length).CopyTo(mine.AsSpan(offset));
                }
            }
            var all = new byte[Stripe];
            Assert.Equal(Stripe, RandomAccess.Read(file, all, (long)w * Stripe));
            Assert.Equal(-1, Patterns.FirstDifference(mine, all));
        })).ToArray();
        await Task.WhenAll(tasks);
        Assert.Equal(0, scope.Export.Counters.Errors);
    }

    [RequiresRootFact]
    public async Task Reads_stop_at_the_end_and_writes_past_it_fail_with_no_space()
    {
        const int Size = 1 << 20;
        await using var scope = await ExportScope.StartAsync(new MemoryNode(Size));
        using var file = File.OpenHandle(scope.File, FileMode.Open, FileAccess.ReadWrite);
        var buffer = new byte[8192];
        Assert.Equal(100, RandomAccess.Read(file, buffer, Size - 100));
        Assert.Equal(0, RandomAccess.Read(file, buffer, Size));

        var e = Assert.ThrowsAny<IOException>(() => RandomAccess.Write(file, buffer, Size));
        Assert.Contains("space", e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(Size, RandomAccess.GetLength(file));
    }

    [RequiresRootFact]
    public async Task A_read_only_export_shows_mode_0444_and_refuses_writers()
    {
        var node = new MemoryNode(1 << 20);
        await node.WriteAsync(0, Patterns.Make(4096, 0, 3), IoFlags.None);
        await using var scope = await ExportScope.StartAsync(node, new FuseExportOptions { ReadOnly = true });
        Assert.True(scope.Export.ReadOnly);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead, File.GetUnixFileMode(scope.File));
        Assert.ThrowsAny<IOException>(() => File.OpenHandle(scope.File, FileMode.Open, FileAccess.ReadWrite).Dispose());

        using var file = File.OpenHandle(scope.File, FileMode.Open, FileAccess.Read);
        var back = new byte[4096];
        Assert.Equal(4096, RandomAccess.Read(file, back, 0));
        Assert.Equal(Patterns.Make(4096, 0, 3), back);
    }

    [RequiresRootFact]
    public async Task Unaligned_file_io_reaches_a_node_that_wants_aligned_requests_aligned()
    {
        const int Size = 4 << 20;
        var aligned = new AlignedOnlyFilter(new MemoryNode(Size), 4096);
        await using var scope = await ExportScope.StartAsync(aligned);
        var model = new ReferenceModel(Size);
        var rng = new Random(99);
        var buffer = new byte[300_000];
        using (var file = File.OpenHandle(scope.File, FileMode.Open, FileAccess.ReadWrite))
        {
            for (var op = 0; op < 300; op++)
            {
                var length = rng.Next(1, buffer.Length);
                var offset = rng.NextInt64(0, Size - length + 1);
                if (rng.Next(2) == 0)
                {
                    Patterns.Fill(buffer.AsSpan(0, length), offset, op);
                    RandomAccess.Write(file, buffer.AsSpan(0, length), offset);
                    model.Write(offset, buffer.AsSpan(0, length));
                }
                else
                {
                    Assert.Equal(length, RandomAccess.Read(file, buffer.AsSpan(0, length), offset));
                    model.Verify(offset, buffer.AsSpan(0, length), $"op {op}");
                }
            }
        }
        Assert.Equal(0, aligned.Violations);
    }

    [RequiresRootFact]
    public async Task Shared_mmap_works_despite_direct_io_and_writes_back_to_the_node()
    {
        const int Size = 1 << 20;
        var node = new MemoryNode(Size);
        await node.WriteAsync(8192, Patterns.Make(4096, 8192, 1), IoFlags.None);
        await using var scope = await ExportScope.StartAsync(node);
        using (var map = MemoryMappedFile.CreateFromFile(scope.File, FileMode.Open, null, 0, MemoryMappedFileAccess.ReadWrite))
        using (var view = map.CreateViewAccessor(0, Size))
        {
            var seen = new byte[4096];
            view.ReadArray(8192, seen, 0, seen.Length);
            Assert.Equal(Patterns.Make(4096, 8192, 1), seen);
            var data = Patterns.Make(4096, 65536, 2);
            view.WriteArray(65536, data, 0, data.Length);
            view.Flush();
        }
        var back = new byte[4096];
        await node.ReadAsync(65536, back);
        Assert.Equal(Patterns.Make(4096, 65536, 2), back);
    }

    [RequiresRootFact]
    public async Task Fsync_reaches_the_node_and_close_after_writes_flushes()
    {
        await using var scope = await ExportScope.StartAsync(new MemoryNode(1 << 20));
        using (var stream = new FileStream(scope.File, FileMode.Open, FileAccess.ReadWrite))
        {
            stream.Write(Patterns.Make(4096, 0, 1));
            stream.Flush(flushToDisk: true);
        }
        Assert.True(scope.Export.Counters.Flushes >= 1);
    }
}
