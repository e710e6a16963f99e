using Blockshot.Core;
using Blockshot.Core.Threading;
using Blockshot.Drivers;
using Blockshot.Nbd.Protocol;

namespace Blockshot.Nbd.Tests;

/// <summary>
/// The connection's own thread: requests served inline run where the disk must not be waited for, and a
/// request that waits lets the ones behind it through, its reply sent later from another thread.
/// </summary>
public class ConnectionThreadTests
{
    [Fact]
    public async Task Requests_are_served_on_a_thread_that_must_not_wait_for_the_disk()
    {
        await using var fx = new ServerFixture();
        var probe = new ProbeFilter(new MemoryNode(1 << 20));
        fx.AddExport("disk", probe);
        await using var c = await RawNbdClient.ConnectAsync(fx.SocketPath);
        await c.HandshakeAsync("disk");
        await c.SendRequestAsync(NbdCommand.Read, 0, 1, 0, 4096);
        var (error, _) = await c.ReadStructuredReadAsync(0, 4096);
        Assert.Equal(0u, error);
        Assert.Equal(1, probe.Reads);
        Assert.False(probe.MayBlockOnLastRead, "a request ran where a blocking read would stall the connection");
        Assert.StartsWith("nbd-conn-", probe.LastThreadName);
    }

    [Fact]
    public async Task A_request_that_waits_does_not_hold_up_the_next_and_its_reply_still_comes()
    {
        await using var fx = new ServerFixture();
        var gated = new GatedReadFilter(new MemoryNode(1 << 20));
        fx.AddExport("disk", gated);
        await using var c = await RawNbdClient.ConnectAsync(fx.SocketPath);
        await c.HandshakeAsync("disk", structured: false);
        await c.SendRequestAsync(NbdCommand.Read, 0, 1, 0, 4096);
        await c.SendRequestAsync(NbdCommand.Read, 0, 2, 4096, 4096);
        var (error, cookie) = await c.ReadSimpleReplyAsync();
        Assert.Equal((0u, 2ul), (error, cookie));
        await c.ReadExactAsync(4096);
        Assert.False(gated.Gate.Task.IsCompleted);
        gated.Gate.SetResult();
        (error, cookie) = await c.ReadSimpleReplyAsync();
        Assert.Equal((0u, 1ul), (error, cookie));
        await c.ReadExactAsync(4096);
    }

    [Fact]
    public async Task The_blocking_policy_forbids_pool_threads_and_marked_threads_only()
    {
        Assert.False(await Task.Run(() => BlockingPolicy.MayBlockHere));
        bool before = false, after = true;
        var thread = new Thread(() =>
        {
            before = BlockingPolicy.MayBlockHere;
            BlockingPolicy.ForbidBlockingOnThisThread();
            after = BlockingPolicy.MayBlockHere;
        });
        thread.Start();
        thread.Join();
        Assert.True(before);
        Assert.False(after);
    }

    private sealed class ProbeFilter(BlockNode next) : FilterNode(next, Ownership.Dispose)
    {
        public int Reads { get; private set; }

        public bool MayBlockOnLastRead { get; private set; } = true;

        public string? LastThreadName { get; private set; }

        public override string Kind => "probe";

        public override ValueTask ReadAsync(long offset, Memory<byte> buffer)
        {
            Reads++;
            MayBlockOnLastRead = BlockingPolicy.MayBlockHere;
            LastThreadName = Thread.CurrentThread.Name;
            return Next.ReadAsync(offset, buffer);
        }
    }

    private sealed class GatedReadFilter(BlockNode next) : FilterNode(next, Ownership.Dispose)
    {
        public TaskCompletionSource Gate { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override string Kind => "gated";

        public override async ValueTask ReadAsync(long offset, Memory<byte> buffer)
        {
            if (offset == 0)
            {
                await Gate.Task;
            }
            await Next.ReadAsync(offset, buffer);
        }
    }
}
