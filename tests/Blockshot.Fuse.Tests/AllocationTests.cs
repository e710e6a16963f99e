using Blockshot.Drivers;
using Blockshot.Fuse.Protocol;
using Xunit.Abstractions;

namespace Blockshot.Fuse.Tests;

/// <summary>The hot path allocates nothing per request. Runs alone so other tests' allocations do not count.</summary>
[Collection(HeavyTools.Name)]
public class AllocationTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Reads_and_writes_allocate_nothing_per_request_once_warm()
    {
        await using var kernel = new FakeKernel(new MemoryNode(16 << 20), readers: 2);
        kernel.Init();
        var read = new byte[FuseReadIn.WireSize];
        var write = new byte[FuseWriteIn.WireSize];
        var data = Patterns.Make(4096, 0, 1);

        void Round(int count)
        {
            for (var i = 0; i < count; i++)
            {
                var offset = (ulong)(i % 1000) * 4096;
                new FuseWriteIn(1, offset, 4096, 0, 0, 0).Write(write);
                kernel.Send(FuseOpcode.Write, write, data: data);
                new FuseReadIn(1, offset, 4096, 0, 0, 0).Write(read);
                kernel.Send(FuseOpcode.Read, read);
                if (kernel.ReceiveInto(Timeout) < 0 || kernel.ReceiveInto(Timeout) < 0)
                {
                    throw new TimeoutException("no reply");
                }
            }
        }

        Round(2000); // warm up: JIT, pools, and the node's pages (written once, then rewritten)
        const int Requests = 20000;
        var before = GC.GetTotalAllocatedBytes(precise: true);
        Round(Requests / 2);
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        output.WriteLine($"{allocated} bytes allocated for {Requests} requests ({(double)allocated / Requests:0.00} per request)");
        Assert.True(allocated < Requests * 8, $"{allocated} bytes allocated for {Requests} requests");
        Assert.Equal(0, kernel.Counters.Errors);
    }
}
