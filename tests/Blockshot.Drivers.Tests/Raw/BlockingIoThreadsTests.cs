using Blockshot.Core;
using Blockshot.Core.Buffers;
using Blockshot.Drivers.Raw;

namespace Blockshot.Drivers.Tests.Raw;

/// <summary>
/// The driver's blocking-I/O threads: as many blocking calls run at once as are queued (up to the cap),
/// where the .NET thread pool would run one per core; and a caller that may block runs its calls itself.
/// </summary>
public sealed class BlockingIoThreadsTests : IDisposable
{
    private readonly TempDir _dir = new("blockshot-blocking-io");
    private readonly BufferPool _pool = new();

    public void Dispose()
    {
        Assert.Equal(0, _pool.Outstanding);
        _pool.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public void Sixteen_blocked_calls_all_run_at_once()
    {
        // Each item blocks until all sixteen have started: that only happens if sixteen threads run them.
        const int Count = 16;
        using var barrier = new Barrier(Count);
        var items = Enumerable.Range(0, Count).Select(_ => new BarrierWork(barrier)).ToArray();
        foreach (var item in items)
        {
            BlockingIoThreads.Queue(item);
        }
        foreach (var item in items)
        {
            Assert.True(item.Done.Wait(TimeSpan.FromSeconds(30)), "a blocked call never ran");
        }
        Assert.All(items, i => Assert.True(i.MetAll, "the calls did not all run at once"));
        Assert.All(items, i => Assert.False(i.RanOnPool, "a blocking call ran on the .NET thread pool"));
        Assert.InRange(BlockingIoThreads.ThreadCount, Count, BlockingIoThreads.MaxThreads);
    }

    [Fact]
    public async Task Direct_reads_from_the_thread_pool_run_on_blocking_io_threads_and_a_dedicated_thread_runs_its_own()
    {
        var path = RawFiles.CreateSparse(_dir.File("direct.raw"), 4 << 20);
        await using var node = RawFileNode.Open(path, RawFiles.Options(_pool, direct: true));
        using var buffer = _pool.Rent(4096);
        var before = BlockingIoThreads.Taken;
        await Task.Run(async () =>
        {
            for (var i = 0; i < 100; i++)
            {
                await node.ReadAsync(8192, buffer.Memory).ConfigureAwait(false);
                await Task.Yield(); // back to the pool for the next one
            }
        });
        Assert.True(BlockingIoThreads.Taken - before >= 100, "O_DIRECT reads from the thread pool ran on the pool");

        var atOnce = false;
        var thread = new Thread(() =>
        {
            var read = node.ReadAsync(8192, buffer.Memory);
            atOnce = read.IsCompletedSuccessfully;
            read.AsTask().GetAwaiter().GetResult();
            node.FlushAsync().AsTask().GetAwaiter().GetResult();
        });
        thread.Start();
        thread.Join();
        Assert.True(atOnce, "an O_DIRECT read from a dedicated thread was handed to another thread");
    }

    [RequiresNowaitWriteRefusalFact]
    public async Task Small_buffered_writes_of_a_file_that_offloads_writes_run_on_blocking_io_threads()
    {
        // Without OffloadWrites, a 4 KiB write from the thread pool runs inline where RWF_NOWAIT is refused.
        var path = RawFiles.CreateSparse(_dir.File("offload.raw"), 1 << 20);
        await using var node = RawFileNode.Open(path, RawFiles.Options(_pool) with { OffloadWrites = true });
        const int Count = 100;
        var data = Patterns.Make(Count * 4096, 0, 6);
        var before = BlockingIoThreads.Taken;
        await Task.Run(async () =>
        {
            for (var i = 0; i < Count; i++)
            {
                await node.WriteAsync(i * 4096L, data.AsMemory(i * 4096, 4096), IoFlags.None).ConfigureAwait(false);
                await Task.Yield();
            }
        });
        Assert.True(BlockingIoThreads.Taken - before >= Count, "small writes of an offloading file ran on the thread pool");
        Assert.True(node.RefusesNowaitWrites);
        var file = await File.ReadAllBytesAsync(path);
        Assert.Equal(-1, Patterns.FirstDifference(data, file.AsSpan(0, data.Length)));
    }

    private sealed class BarrierWork(Barrier barrier) : BlockingIoWork
    {
        public ManualResetEventSlim Done { get; } = new();

        public bool MetAll { get; private set; }

        public bool RanOnPool { get; private set; }

        public override void Execute()
        {
            RanOnPool = Thread.CurrentThread.IsThreadPoolThread;
            MetAll = barrier.SignalAndWait(TimeSpan.FromSeconds(20));
            Done.Set();
        }
    }
}
