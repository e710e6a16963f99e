using Blockshot.Core;
using Blockshot.Core.Buffers;

namespace Blockshot.Drivers.Tests.Raw;

[CollectionDefinition(nameof(AllocationMeasurement), DisableParallelization = true)]
public sealed class AllocationMeasurement
{
}

/// <summary>
/// The request path allocates nothing per request. Measured process-wide, so the collection runs
/// alone; a small allowance absorbs the runtime's own occasional allocations (thread-pool growth).
/// Optimized builds only (see <see cref="OptimizedBuild"/>).
/// </summary>
[Collection(nameof(AllocationMeasurement))]
public sealed class RawFileAllocationTests : IDisposable
{
    private const int Requests = 2000;

    // The smallest object is 24 bytes: a per-request allocation shows as at least that much.
    private const double MaxBytesPerRequest = 12;

    private readonly TempDir _dir = new("blockshot-raw-alloc");
    private readonly BufferPool _pool = new();

    public void Dispose()
    {
        Assert.Equal(0, _pool.Outstanding);
        _pool.Dispose();
        _dir.Dispose();
    }

    [RequiresOptimizedBuildTheory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Aligned_reads_and_writes_allocate_nothing_per_request(bool direct)
    {
        var path = RawFiles.CreateSparse(_dir.File($"alloc-{direct}.raw"), 4 << 20);
        await using var node = RawFileNode.Open(path, RawFiles.Options(_pool, direct));
        using var buffer = _pool.Rent(4096);
        var memory = buffer.Memory;

        async Task RunAsync(int count)
        {
            for (var i = 0; i < count; i++)
            {
                var offset = (long)(i % 1024) * 4096;
                await node.WriteAsync(offset, memory, IoFlags.None);
                await node.ReadAsync(offset, memory);
            }
        }

        await RunAsync(200); // warm up: pooled state machines, the handle's reusable task source
        await AssertAllocationFreeAsync(RunAsync);
    }

    [RequiresOptimizedBuildFact]
    public async Task Unaligned_direct_requests_allocate_nothing_per_request()
    {
        var path = RawFiles.CreateSparse(_dir.File("alloc-rmw.raw"), 4 << 20);
        await using var node = RawFileNode.Open(path, RawFiles.Options(_pool, direct: true));
        var data = new byte[1000];

        async Task RunAsync(int count)
        {
            for (var i = 0; i < count; i++)
            {
                var offset = (long)(i % 1024) * 4000 + 7;
                await node.WriteAsync(offset, data, IoFlags.None);
                await node.ReadAsync(offset, data);
            }
        }

        await RunAsync(200);
        await AssertAllocationFreeAsync(RunAsync);
    }

    /// <summary>
    /// Runs the loop a few times and judges the quietest run: other threads of the process (the test
    /// runner reporting results) add noise to a process-wide count, a per-request allocation shows in
    /// every run.
    /// </summary>
    private static async Task AssertAllocationFreeAsync(Func<int, Task> run)
    {
        var best = double.MaxValue;
        // Under load, async continuations migrate between threads and the runtime's pooled state-machine
        // boxes sometimes miss their per-thread cache; that noise comes and goes, a real per-request
        // allocation does not, so up to ten runs are tried.
        for (var attempt = 0; attempt < 10 && best >= MaxBytesPerRequest; attempt++)
        {
            var before = GC.GetTotalAllocatedBytes(precise: true);
            await run(Requests);
            best = Math.Min(best, (GC.GetTotalAllocatedBytes(precise: true) - before) / (2.0 * Requests));
        }
        Assert.True(best < MaxBytesPerRequest, $"{best:0.0} bytes allocated per request");
    }
}
