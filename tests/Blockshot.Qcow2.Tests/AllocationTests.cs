using System.Diagnostics;
using System.Reflection;
using Blockshot.Core;

namespace Blockshot.Qcow2.Tests;

/// <summary>
/// Reads and in-place writes of allocated clusters (the served hot path) allocate nothing per request.
/// Measured process-wide, so the collection runs alone; only optimized builds (<c>-c Release</c>)
/// mean anything, because a Debug build compiles async state machines as classes.
/// </summary>
[Collection(nameof(HostileImageMeasurement))]
public sealed class AllocationTests
{
    private const int Requests = 2000;

    // The smallest object is 24 bytes: a per-request allocation shows as at least that much.
    private const double MaxBytesPerRequest = 12;

    [RequiresOptimizedQcow2Theory]
    [InlineData("")]
    [InlineData("extended_l2=on,cluster_size=128k")]
    public async Task In_place_writes_and_reads_allocate_nothing_per_request(string options)
    {
        using var dir = new TempDir("qcow2-alloc");
        var path = dir.File("a.qcow2");
        await Qcow2Image.CreateAsync(path, 8 << 20, CreateTests.Parse(options));
        await using var node = await Qcow2Node.OpenAsync(path);
        var data = new byte[4096];
        var full = Patterns.Make(8 << 20, 0, 1);
        await node.WriteAsync(0, full, IoFlags.None);

        async Task RunAsync(int count)
        {
            for (var i = 0; i < count; i++)
            {
                var offset = (long)(i * 7919 % 2048) * 4096;
                await node.WriteAsync(offset, data, IoFlags.None);
                await node.ReadAsync(offset, data);
            }
        }

        await RunAsync(200);
        var best = double.MaxValue;
        for (var attempt = 0; attempt < 5 && best >= MaxBytesPerRequest; attempt++)
        {
            var before = GC.GetTotalAllocatedBytes(precise: true);
            await RunAsync(Requests);
            best = Math.Min(best, (GC.GetTotalAllocatedBytes(precise: true) - before) / (2.0 * Requests));
        }
        Assert.True(best < MaxBytesPerRequest, $"{best:0.0} bytes allocated per request");
    }
}

/// <summary>A theory skipped (with the reason) unless Blockshot.Qcow2 is an optimized build.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class RequiresOptimizedQcow2TheoryAttribute : TheoryAttribute
{
    public RequiresOptimizedQcow2TheoryAttribute()
    {
        Skip = typeof(Qcow2Node).Assembly.GetCustomAttribute<DebuggableAttribute>()?.IsJITOptimizerDisabled == true
            ? "allocation counts need an optimized build of Blockshot.Qcow2 (dotnet test -c Release)"
            : null;
    }
}
