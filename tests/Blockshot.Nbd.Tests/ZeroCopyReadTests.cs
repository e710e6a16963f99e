using Blockshot.Core;
using Blockshot.Drivers;
using Blockshot.Nbd.Protocol;
using Microsoft.Win32.SafeHandles;

namespace Blockshot.Nbd.Tests;

/// <summary>
/// Large reads of a raw file the page cache holds go from the cache to the socket with sendfile: the
/// replies are byte for byte what a copy gives, in simple and structured form, and only where nothing
/// above the file could change the data.
/// </summary>
public class ZeroCopyReadTests
{
    private const string CacheStat = "cachestat(2)";
    private const int Size = 8 << 20;
    private const int Large = 1 << 20;

    private static readonly NbdServerOptions ZeroCopyOn = new() { ZeroCopyMinConnections = 1 };

    private static async Task<(byte[] Data, RawFileNode Node)> CachedImageAsync(ServerFixture fx)
    {
        var data = Patterns.Make(Size, 0, 21);
        var path = Path.Combine(fx.Dir, "disk.raw");
        await File.WriteAllBytesAsync(path, data);
        var node = RawFileNode.Open(path, new RawFileOptions { BufferPool = fx.Pool });
        await node.ReadAsync(0, new byte[Size]);
        return (data, node);
    }

    [RequiresKernelFact(6, 5, CacheStat)]
    public async Task Large_reads_of_a_cached_raw_file_go_without_a_copy_and_match_the_file()
    {
        await using var fx = new ServerFixture(ZeroCopyOn);
        var (data, node) = await CachedImageAsync(fx);
        fx.AddExport("disk", node);
        await using var c = await RawNbdClient.ConnectAsync(fx.SocketPath);
        await c.HandshakeAsync("disk");
        ulong[] offsets = [0, 3 * Large + 4096, Size - Large];
        for (var i = 0; i < offsets.Length; i++)
        {
            await c.SendRequestAsync(NbdCommand.Read, 0, (ulong)i, offsets[i], Large);
        }
        for (var i = 0; i < offsets.Length; i++)
        {
            var (error, back) = await c.ReadStructuredReadAsync(offsets[i], Large);
            Assert.Equal(0u, error);
            Assert.Equal(-1, Patterns.FirstDifference(data.AsSpan((int)offsets[i], Large), back));
        }
        Assert.Equal(offsets.Length, fx.Server.ZeroCopyReplies);

        await c.SendRequestAsync(NbdCommand.Read, 0, 9, 8192, 4096);
        var (smallError, small) = await c.ReadStructuredReadAsync(8192, 4096);
        Assert.Equal(0u, smallError);
        Assert.Equal(-1, Patterns.FirstDifference(data.AsSpan(8192, 4096), small));
        Assert.Equal(offsets.Length, fx.Server.ZeroCopyReplies);
    }

    [RequiresKernelFact(6, 5, CacheStat)]
    public async Task Simple_replies_carry_the_data_from_the_cache_too()
    {
        await using var fx = new ServerFixture(ZeroCopyOn);
        var (data, node) = await CachedImageAsync(fx);
        fx.AddExport("disk", node);
        await using var c = await RawNbdClient.ConnectAsync(fx.SocketPath);
        await c.HandshakeAsync("disk", structured: false);
        await c.SendRequestAsync(NbdCommand.Read, 0, 5, 5 * 4096, Large);
        await c.SendRequestAsync(NbdCommand.Read, 0, 6, 8192, 4096);
        for (var i = 0; i < 2; i++)
        {
            var (error, cookie) = await c.ReadSimpleReplyAsync();
            Assert.Equal(0u, error);
            var (offset, length) = cookie == 5 ? (5 * 4096, Large) : (8192, 4096);
            var back = await c.ReadExactAsync(length);
            Assert.Equal(-1, Patterns.FirstDifference(data.AsSpan(offset, length), back));
        }
        Assert.Equal(1, fx.Server.ZeroCopyReplies);
    }

    [RequiresKernelFact(6, 5, CacheStat)]
    public async Task A_filter_above_the_file_or_a_single_connection_under_the_default_setting_keeps_reads_copied()
    {
        await using (var fx = new ServerFixture(ZeroCopyOn))
        {
            var (data, node) = await CachedImageAsync(fx);
            fx.AddExport("disk", new PassThroughFilter(node));
            await ReadOnceAsync(fx, data);
            Assert.Equal(0, fx.Server.ZeroCopyReplies);
        }
        await using (var fx = new ServerFixture())
        {
            var (data, node) = await CachedImageAsync(fx);
            fx.AddExport("disk", node);
            await ReadOnceAsync(fx, data);
            Assert.Equal(0, fx.Server.ZeroCopyReplies);
        }
        await using (var fx = new ServerFixture(new NbdServerOptions { ZeroCopyReadMinLength = 0, ZeroCopyMinConnections = 1 }))
        {
            var (data, node) = await CachedImageAsync(fx);
            fx.AddExport("disk", node);
            await ReadOnceAsync(fx, data);
            Assert.Equal(0, fx.Server.ZeroCopyReplies);
        }
    }

    [RequiresKernelFact(6, 5, CacheStat)]
    public async Task Under_the_default_setting_reads_go_without_a_copy_while_a_second_connection_is_open_and_copied_again_after()
    {
        await using var fx = new ServerFixture();
        var (data, node) = await CachedImageAsync(fx);
        fx.AddExport("disk", node);
        await using (var second = await RawNbdClient.ConnectAsync(fx.SocketPath))
        {
            await second.HandshakeAsync("disk");
            // A reply on it means the server counts it as transmitting (requests are read only after that).
            await second.SendRequestAsync(NbdCommand.Read, 0, 1, 0, 4096);
            Assert.Equal(0u, (await second.ReadStructuredReadAsync(0, 4096)).Item1);
            await ReadOnceAsync(fx, data);
            Assert.Equal(1, fx.Server.ZeroCopyReplies);
        }
        // The second connection's end is counted once its close is handled; wait for the server to see it.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (fx.Server.ConnectionCount > 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }
        Assert.Equal(0, fx.Server.ConnectionCount);
        await ReadOnceAsync(fx, data);
        Assert.Equal(1, fx.Server.ZeroCopyReplies);
    }

    private static async Task ReadOnceAsync(ServerFixture fx, byte[] data)
    {
        await using var c = await RawNbdClient.ConnectAsync(fx.SocketPath);
        await c.HandshakeAsync("disk");
        await c.SendRequestAsync(NbdCommand.Read, 0, 1, Large, Large);
        var (error, back) = await c.ReadStructuredReadAsync(Large, Large);
        Assert.Equal(0u, error);
        Assert.Equal(-1, Patterns.FirstDifference(data.AsSpan(Large, Large), back));
    }

    [Fact]
    public async Task A_file_that_ends_before_the_mapped_range_is_padded_with_zeros_and_the_connection_goes_on()
    {
        await using var fx = new ServerFixture(ZeroCopyOn);
        var path = Path.Combine(fx.Dir, "short.raw");
        var head = Patterns.Make(100 << 10, 0, 4);
        await File.WriteAllBytesAsync(path, head);
        var node = new ShortFileNode(File.OpenHandle(path), Large);
        fx.AddExport("disk", node);
        await using var c = await RawNbdClient.ConnectAsync(fx.SocketPath);
        await c.HandshakeAsync("disk");
        await c.SendRequestAsync(NbdCommand.Read, 0, 1, 0, Large);
        var (error, back) = await c.ReadStructuredReadAsync(0, Large);
        Assert.Equal(0u, error);
        Assert.Equal(-1, Patterns.FirstDifference(head, back.AsSpan(0, head.Length)));
        Assert.True(back.AsSpan(head.Length).IndexOfAnyExcept((byte)0) < 0, "the part past the file's end was not zeros");
        await c.SendRequestAsync(NbdCommand.Read, 0, 2, 0, 4096);
        var (again, first) = await c.ReadStructuredReadAsync(0, 4096);
        Assert.Equal(0u, again);
        Assert.Equal(-1, Patterns.FirstDifference(head.AsSpan(0, 4096), first));
    }

    [Fact]
    public async Task A_client_gone_mid_reply_leaves_the_server_serving_and_the_file_released()
    {
        await using var fx = new ServerFixture(ZeroCopyOn);
        var path = Path.Combine(fx.Dir, "whole.raw");
        await File.WriteAllBytesAsync(path, Patterns.Make(Size, 0, 8));
        var handle = File.OpenHandle(path);
        var node = new ShortFileNode(handle, Size);
        fx.AddExport("disk", node);
        await using (var rude = await RawNbdClient.ConnectAsync(fx.SocketPath))
        {
            await rude.HandshakeAsync("disk");
            for (var i = 0; i < 32; i++)
            {
                await rude.SendRequestAsync(NbdCommand.Read, 0, (ulong)i, (ulong)(i % 8) * Large, Large);
            }
        }
        await using var polite = await RawNbdClient.ConnectAsync(fx.SocketPath);
        await polite.HandshakeAsync("disk");
        await polite.SendRequestAsync(NbdCommand.Read, 0, 1, Large, Large);
        var (error, _) = await polite.ReadStructuredReadAsync(Large, Large);
        Assert.Equal(0u, error);
        await polite.DisposeAsync();
        await fx.Server.StopAsync(TimeSpan.FromSeconds(10));
        // Closed only once every mapped range has given its reference back.
        handle.Dispose();
        Assert.True(handle.IsClosed, "a mapped range kept its reference on the file after its connection ended");
    }

    private sealed class PassThroughFilter(BlockNode next) : FilterNode(next, Ownership.Dispose)
    {
        public override string Kind => "pass-through";
    }

    /// <summary>A node whose data is a file's, mapped whole whatever the file's length; past its end, zeros.</summary>
    private sealed class ShortFileNode(SafeFileHandle file, long size) : BlockNode
    {
        public override string Kind => "short-file";

        public override long Size => size;

        protected override NodeCapabilities ComputeCapabilities() => new(NodeFeatures.None);

        public override ValueTask ReadAsync(long offset, Memory<byte> buffer)
        {
            buffer.Span.Clear();
            RandomAccess.Read(file, buffer.Span, offset);
            return default;
        }

        public override bool TryMapCachedRead(long offset, int length, out CachedFileRange range)
        {
            var added = false;
            file.DangerousAddRef(ref added);
            range = new CachedFileRange(file, offset, length);
            return true;
        }
    }
}
