using System.Text;
using Blockshot.Nbd.Protocol;

namespace Blockshot.Nbd.Tests;

/// <summary>Broken and hostile clients: each is cut off or answered, and a good client keeps working.</summary>
public class HostileClientTests
{
    private static async Task AssertHealthyAsync(ServerFixture fx)
    {
        await using var c = await RawNbdClient.ConnectAsync(fx.SocketPath);
        await c.HandshakeAsync("disk");
        var data = Patterns.Make(4096, 8192, 77);
        await c.SendRequestAsync(NbdCommand.Write, 0, 1, 8192, 4096, data);
        Assert.Equal((0u, 1UL), await c.ReadSimpleReplyAsync());
        await c.SendRequestAsync(NbdCommand.Read, 0, 2, 8192, 4096);
        var (error, back) = await c.ReadStructuredReadAsync(8192, 4096);
        Assert.Equal(0u, error);
        Assert.Equal(data, back);
    }

    private static ServerFixture NewFixture(TimeSpan? handshake = null)
    {
        var fx = new ServerFixture(new NbdServerOptions { HandshakeTimeout = handshake ?? TimeSpan.FromSeconds(10), MaxOptions = 16 });
        fx.AddMemoryExport("disk", 4 << 20);
        return fx;
    }

    [Fact]
    public async Task Garbage_instead_of_a_handshake_is_cut_off()
    {
        await using var fx = NewFixture();
        var rng = new Random(1);
        for (var i = 0; i < 20; i++)
        {
            await using var c = await RawNbdClient.ConnectAsync(fx.SocketPath);
            await c.ReadGreetingAsync();
            var junk = new byte[rng.Next(4, 300)];
            rng.NextBytes(junk);
            junk[0] |= 0x80; // unknown client flags, or a bad option magic later
            await c.SendAsync(junk);
            Assert.True(await c.ServerClosesAsync(TimeSpan.FromSeconds(5)), $"round {i}: server kept a garbage connection open");
        }
        await AssertHealthyAsync(fx);
    }

    [Fact]
    public async Task Clients_without_fixed_newstyle_are_refused()
    {
        await using var fx = NewFixture();
        await using var c = await RawNbdClient.ConnectAsync(fx.SocketPath);
        await c.ReadGreetingAsync();
        await c.SendClientFlagsAsync(0);
        Assert.True(await c.ServerClosesAsync(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task A_silent_client_is_dropped_when_the_handshake_times_out()
    {
        await using var fx = NewFixture(TimeSpan.FromMilliseconds(300));
        await using var c = await RawNbdClient.ConnectAsync(fx.SocketPath);
        await c.ReadGreetingAsync();
        Assert.True(await c.ServerClosesAsync(TimeSpan.FromSeconds(5)));
        await AssertHealthyAsync(fx);
    }

    [Fact]
    public async Task Oversized_option_data_and_too_many_options_end_the_handshake_with_an_error()
    {
        await using var fx = NewFixture();
        await using (var c = await RawNbdClient.ConnectAsync(fx.SocketPath))
        {
            await c.ReadGreetingAsync();
            await c.SendClientFlagsAsync();
            await c.SendOptionAsync((uint)NbdOption.Go, uint.MaxValue, []);
            Assert.Equal(NbdOptionReplyType.ErrTooBig, (await c.ReadOptionReplyAsync()).Type);
            Assert.True(await c.ServerClosesAsync(TimeSpan.FromSeconds(5)));
        }
        await using (var c = await RawNbdClient.ConnectAsync(fx.SocketPath))
        {
            await c.ReadGreetingAsync();
            await c.SendClientFlagsAsync();
            for (var i = 0; i < 16; i++)
            {
                await c.SendOptionAsync(999, []);
                Assert.Equal(NbdOptionReplyType.ErrUnsupported, (await c.ReadOptionReplyAsync()).Type);
            }
            await c.SendOptionAsync(999, []);
            Assert.Equal(NbdOptionReplyType.ErrPolicy, (await c.ReadOptionReplyAsync()).Type);
            Assert.True(await c.ServerClosesAsync(TimeSpan.FromSeconds(5)));
        }
        await AssertHealthyAsync(fx);
    }

    [Fact]
    public async Task Truncated_requests_and_payloads_leave_the_server_serving()
    {
        await using var fx = NewFixture();
        await using (var c = await RawNbdClient.ConnectAsync(fx.SocketPath))
        {
            await c.HandshakeAsync("disk");
            var header = new byte[28];
            new NbdRequest(0, NbdCommand.Read, 1, 0, 4096).Write(header);
            await c.SendAsync(header.AsMemory(0, 13));
        }
        await using (var c = await RawNbdClient.ConnectAsync(fx.SocketPath))
        {
            await c.HandshakeAsync("disk");
            await c.SendRequestAsync(NbdCommand.Write, 0, 1, 0, 1 << 20, new byte[1000]);
        }
        await using (var c = await RawNbdClient.ConnectAsync(fx.SocketPath))
        {
            await c.HandshakeAsync("disk");
            // Mid-handshake option data cut short.
        }
        await Task.Delay(100);
        await AssertHealthyAsync(fx);
    }

    [Fact]
    public async Task A_bad_request_magic_ends_the_connection()
    {
        await using var fx = NewFixture();
        await using var c = await RawNbdClient.ConnectAsync(fx.SocketPath);
        await c.HandshakeAsync("disk");
        await c.SendAsync(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n!"));
        Assert.True(await c.ServerClosesAsync(TimeSpan.FromSeconds(5)));
        await AssertHealthyAsync(fx);
    }

    [Fact]
    public async Task A_client_that_disconnects_with_requests_in_flight_leaks_nothing()
    {
        await using var fx = NewFixture();
        for (var round = 0; round < 10; round++)
        {
            await using var c = await RawNbdClient.ConnectAsync(fx.SocketPath);
            await c.HandshakeAsync("disk");
            for (var i = 0; i < 100; i++)
            {
                await c.SendRequestAsync(NbdCommand.Read, 0, (ulong)i, (ulong)(i * 4096), 65536);
            }
        }
        await Task.Delay(200);
        await AssertHealthyAsync(fx);
    }

    [Fact]
    public async Task A_client_that_never_reads_replies_is_held_back_not_buffered_without_bound()
    {
        await using var fx = NewFixture();
        var c = await RawNbdClient.ConnectAsync(fx.SocketPath);
        await c.HandshakeAsync("disk");
        // Ask for ~1 GiB of reads without reading a byte; the server must stop reading requests
        // once the connection's payload budget is spent, so memory stays bounded by that budget.
        var send = Task.Run(async () =>
        {
            for (var i = 0; i < 1024; i++)
            {
                await c.SendRequestAsync(NbdCommand.Read, NbdCommandFlags.DontFragment, (ulong)i, 0, 1 << 20);
            }
        });
        await Task.WhenAny(send, Task.Delay(2000));
        Assert.False(send.IsCompletedSuccessfully, "server read every request although no reply could be sent");
        var budget = new NbdServerOptions().MaxBytesInFlightPerConnection;
        Assert.True(fx.Pool.AllocatedBytes <= budget + (1 << 20), $"server holds {fx.Pool.AllocatedBytes >> 20} MiB of buffers");
        await c.DisposeAsync();
        await Task.WhenAny(send, Task.Delay(5000));
        await AssertHealthyAsync(fx);
    }

    [Fact]
    public async Task Many_clients_at_once_each_see_their_own_data()
    {
        await using var fx = new ServerFixture();
        fx.AddMemoryExport("disk", 64 << 20);
        var clients = Enumerable.Range(0, 40).Select(async id =>
        {
            await using var c = await RawNbdClient.ConnectAsync(fx.SocketPath);
            await c.HandshakeAsync("disk");
            var offset = (ulong)id << 20;
            for (var i = 0; i < 20; i++)
            {
                var data = Patterns.Make(8192, (long)offset + i * 8192, id);
                await c.SendRequestAsync(NbdCommand.Write, 0, (ulong)i, offset + (ulong)(i * 8192), 8192, data);
            }
            for (var i = 0; i < 20; i++)
            {
                Assert.Equal(0u, (await c.ReadSimpleReplyAsync()).Error);
            }
            await c.SendRequestAsync(NbdCommand.Read, NbdCommandFlags.DontFragment, 99, offset, 20 * 8192);
            var (error, back) = await c.ReadStructuredReadAsync(offset, 20 * 8192);
            Assert.Equal(0u, error);
            Assert.Equal(-1, Patterns.FirstDifference(Patterns.Make(20 * 8192, (long)offset, id).AsSpan(), back));
        });
        await Task.WhenAll(clients);
    }
}
