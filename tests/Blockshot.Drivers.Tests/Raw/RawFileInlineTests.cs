using Blockshot.Core;
using Blockshot.Core.Buffers;

namespace Blockshot.Drivers.Tests.Raw;

/// <summary>
/// Where buffered I/O runs: a caller on a thread of its own (a FUSE reader) gets large reads and writes
/// done on that thread, at once; a thread-pool caller still hands large writes to the pool.
/// </summary>
public sealed class RawFileInlineTests : IDisposable
{
    private const int Large = 1 << 20;
    private readonly TempDir _dir = new("blockshot-raw-inline");
    private readonly BufferPool _pool = new();

    public void Dispose()
    {
        Assert.Equal(0, _pool.Outstanding);
        _pool.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public async Task A_dedicated_thread_writes_and_reads_a_large_request_synchronously()
    {
        var path = RawFiles.CreateSparse(_dir.File("dedicated.raw"), 4 << 20);
        await using var node = RawFileNode.Open(path, RawFiles.Options(_pool));
        var data = Patterns.Make(Large, 12345, 3);
        var back = new byte[Large];
        bool wroteAtOnce = false, readAtOnce = false;
        var thread = new Thread(() =>
        {
            var write = node.WriteAsync(12345, data, IoFlags.None);
            wroteAtOnce = write.IsCompletedSuccessfully;
            write.AsTask().GetAwaiter().GetResult();
            var read = node.ReadAsync(12345, back);
            readAtOnce = read.IsCompletedSuccessfully;
            read.AsTask().GetAwaiter().GetResult();
        });
        thread.Start();
        thread.Join();
        Assert.True(wroteAtOnce, "a 1 MiB write from a dedicated thread went through the thread pool");
        Assert.True(readAtOnce, "a 1 MiB read from a dedicated thread went through the thread pool");
        Assert.Equal(-1, Patterns.FirstDifference(data, back));
        var file = await File.ReadAllBytesAsync(path);
        Assert.Equal(-1, Patterns.FirstDifference(data, file.AsSpan(12345, Large)));
    }

    [Fact]
    public async Task A_thread_pool_caller_still_gets_large_writes_right()
    {
        var path = RawFiles.CreateSparse(_dir.File("pool.raw"), 4 << 20);
        await using var node = RawFileNode.Open(path, RawFiles.Options(_pool));
        var data = Patterns.Make(Large, 4096, 5);
        await Task.Run(async () => await node.WriteAsync(4096, data, IoFlags.None));
        var back = new byte[Large];
        await Task.Run(async () => await node.ReadAsync(4096, back));
        Assert.Equal(-1, Patterns.FirstDifference(data, back));
    }

    [Fact]
    public async Task A_dedicated_thread_reading_past_a_shrunken_end_gets_zeros()
    {
        var path = RawFiles.CreateSparse(_dir.File("shrunk.raw"), 2 << 20);
        await using var node = RawFileNode.Open(path, RawFiles.Options(_pool));
        var data = Patterns.Make(Large, 0, 7);
        await node.WriteAsync(Large, data, IoFlags.None);
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
        {
            stream.SetLength(Large + 4096); // something else cut the file short under the node
        }
        var back = new byte[Large];
        back.AsSpan().Fill(0xEE);
        var thread = new Thread(() => node.ReadAsync(Large, back).AsTask().GetAwaiter().GetResult());
        thread.Start();
        thread.Join();
        Assert.Equal(-1, Patterns.FirstDifference(data.AsSpan(0, 4096), back.AsSpan(0, 4096)));
        Assert.True(back.AsSpan(4096).IndexOfAnyExcept((byte)0) < 0, "bytes past the end did not read as zeros");
    }
}
