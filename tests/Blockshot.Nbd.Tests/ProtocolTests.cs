using System.Buffers.Binary;
using System.Text;
using Blockshot.Core;
using Blockshot.Nbd.Protocol;

namespace Blockshot.Nbd.Tests;

public class ProtocolTests
{
    [Fact]
    public async Task Go_reports_size_and_flags_that_match_the_export()
    {
        await using var fx = new ServerFixture();
        fx.AddMemoryExport("rw", 1 << 20);
        fx.AddMemoryExport("ro", 2 << 20, readOnly: true);
        await using (var c = await RawNbdClient.ConnectAsync(fx.SocketPath))
        {
            var (size, flags) = await c.HandshakeAsync("rw");
            Assert.Equal(1UL << 20, size);
            Assert.True(flags.HasFlag(NbdTransmissionFlags.HasFlags | NbdTransmissionFlags.SendFlush | NbdTransmissionFlags.SendFua
                | NbdTransmissionFlags.SendTrim | NbdTransmissionFlags.SendWriteZeroes | NbdTransmissionFlags.SendFastZero
                | NbdTransmissionFlags.SendDf | NbdTransmissionFlags.CanMultiConn | NbdTransmissionFlags.SendCache));
            Assert.False(flags.HasFlag(NbdTransmissionFlags.ReadOnly));
        }
        await using (var c = await RawNbdClient.ConnectAsync(fx.SocketPath))
        {
            var (size, flags) = await c.HandshakeAsync("ro", structured: false);
            Assert.Equal(2UL << 20, size);
            Assert.True(flags.HasFlag(NbdTransmissionFlags.ReadOnly));
            Assert.False(flags.HasFlag(NbdTransmissionFlags.SendDf), "DF without structured replies");
            Assert.False(flags.HasFlag(NbdTransmissionFlags.SendTrim));
        }
    }

    [Fact]
    public async Task List_names_every_export_with_its_description()
    {
        await using var fx = new ServerFixture();
        fx.AddMemoryExport("a", 4096, description: "first disk");
        fx.AddMemoryExport("b", 4096);
        await using var c = await RawNbdClient.ConnectAsync(fx.SocketPath);
        await c.ReadGreetingAsync();
        await c.SendClientFlagsAsync();
        await c.SendOptionAsync((uint)NbdOption.List, []);
        var names = new List<string>();
        while (true)
        {
            var (_, type, data) = await c.ReadOptionReplyAsync();
            if (type == NbdOptionReplyType.Ack)
            {
                break;
            }
            Assert.Equal(NbdOptionReplyType.Server, type);
            var n = BinaryPrimitives.ReadUInt32BigEndian(data);
            names.Add(Encoding.UTF8.GetString(data, 4, (int)n) + "|" + Encoding.UTF8.GetString(data, 4 + (int)n, data.Length - 4 - (int)n));
        }
        Assert.Equal(["a|first disk", "b|"], names);
    }

    [Fact]
    public async Task Unknown_options_and_unknown_exports_get_errors_without_losing_sync()
    {
        await using var fx = new ServerFixture();
        fx.AddMemoryExport("disk", 4096);
        await using var c = await RawNbdClient.ConnectAsync(fx.SocketPath);
        await c.ReadGreetingAsync();
        await c.SendClientFlagsAsync();
        await c.SendOptionAsync(1234, Encoding.ASCII.GetBytes("some payload"));
        Assert.Equal(NbdOptionReplyType.ErrUnsupported, (await c.ReadOptionReplyAsync()).Type);
        await c.SendOptionAsync((uint)NbdOption.StartTls, []);
        Assert.Equal(NbdOptionReplyType.ErrUnsupported, (await c.ReadOptionReplyAsync()).Type);
        await c.SendOptionAsync((uint)NbdOption.Info, RawNbdClient.GoData("nope"));
        var unknown = await c.ReadOptionReplyAsync();
        Assert.Equal(NbdOptionReplyType.ErrUnknown, unknown.Type);
        Assert.Contains("nope", Encoding.UTF8.GetString(unknown.Data));
        await c.SendOptionAsync((uint)NbdOption.Go, [0, 0, 0, 9, 1]);
        Assert.Equal(NbdOptionReplyType.ErrInvalid, (await c.ReadOptionReplyAsync()).Type);
        await c.SendOptionAsync((uint)NbdOption.ListMetaContext, RawNbdClient.MetaData("disk"));
        Assert.Equal(NbdOptionReplyType.ErrInvalid, (await c.ReadOptionReplyAsync()).Type);
        await c.SendOptionAsync((uint)NbdOption.Go, RawNbdClient.GoData("disk", NbdInfoType.Name, NbdInfoType.BlockSize));
        var sawBlockSize = false;
        while (true)
        {
            var (_, type, data) = await c.ReadOptionReplyAsync();
            if (type == NbdOptionReplyType.Ack)
            {
                break;
            }
            if (BinaryPrimitives.ReadUInt16BigEndian(data) == (ushort)NbdInfoType.BlockSize)
            {
                sawBlockSize = true;
                Assert.Equal(1u, BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(2)));
                Assert.Equal(4096u, BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(6)));
                Assert.Equal(32u << 20, BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(10)));
            }
        }
        Assert.True(sawBlockSize);
        await c.SendRequestAsync(NbdCommand.Flush, 0, 7, 0, 0);
        Assert.Equal((0u, 7UL), await c.ReadSimpleReplyAsync());
    }

    [Fact]
    public async Task Export_name_option_sends_the_zero_padding_unless_the_client_declined_it()
    {
        await using var fx = new ServerFixture();
        fx.AddMemoryExport("disk", 8192);
        await using var c = await RawNbdClient.ConnectAsync(fx.SocketPath);
        await c.ReadGreetingAsync();
        await c.SendClientFlagsAsync(1);
        await c.SendOptionAsync((uint)NbdOption.ExportName, Encoding.UTF8.GetBytes("disk"));
        var reply = await c.ReadExactAsync(134);
        Assert.Equal(8192UL, BinaryPrimitives.ReadUInt64BigEndian(reply));
        Assert.True(reply.AsSpan(10).IndexOfAnyExcept((byte)0) < 0);
        await c.SendRequestAsync(NbdCommand.Write, 0, 1, 0, 3, [1, 2, 3]);
        Assert.Equal((0u, 1UL), await c.ReadSimpleReplyAsync());
        await c.SendRequestAsync(NbdCommand.Read, 0, 2, 0, 3);
        Assert.Equal((0u, 2UL), await c.ReadSimpleReplyAsync());
        Assert.Equal(new byte[] { 1, 2, 3 }, await c.ReadExactAsync(3));
    }

    [Fact]
    public async Task Meta_contexts_are_listed_selected_and_queried()
    {
        await using var fx = new ServerFixture();
        var node = fx.AddMemoryExport("disk", 4 << 20);
        await node.WriteAsync(1 << 20, new byte[8192], IoFlags.None);
        await using var c = await RawNbdClient.ConnectAsync(fx.SocketPath);
        await c.ReadGreetingAsync();
        await c.SendClientFlagsAsync();
        await c.SendOptionAsync((uint)NbdOption.StructuredReply, []);
        await c.ReadOptionReplyAsync();
        await c.SendOptionAsync((uint)NbdOption.ListMetaContext, RawNbdClient.MetaData("disk"));
        var listed = await c.ReadOptionReplyAsync();
        Assert.Equal(NbdOptionReplyType.MetaContext, listed.Type);
        Assert.Equal("base:allocation", Encoding.UTF8.GetString(listed.Data, 4, listed.Data.Length - 4));
        Assert.Equal(NbdOptionReplyType.Ack, (await c.ReadOptionReplyAsync()).Type);
        await c.SendOptionAsync((uint)NbdOption.SetMetaContext, RawNbdClient.MetaData("disk", "base:allocation", "x-unknown:thing"));
        var set = await c.ReadOptionReplyAsync();
        var id = BinaryPrimitives.ReadUInt32BigEndian(set.Data);
        Assert.Equal(NbdOptionReplyType.Ack, (await c.ReadOptionReplyAsync()).Type);
        await c.SendOptionAsync((uint)NbdOption.Go, RawNbdClient.GoData("disk"));
        while ((await c.ReadOptionReplyAsync()).Type != NbdOptionReplyType.Ack)
        {
        }

        await c.SendRequestAsync(NbdCommand.BlockStatus, 0, 9, 0, 4 << 20);
        var (done, type, cookie, payload) = await c.ReadChunkAsync();
        Assert.True(done);
        Assert.Equal(NbdReplyType.BlockStatus, type);
        Assert.Equal(9UL, cookie);
        Assert.Equal(id, BinaryPrimitives.ReadUInt32BigEndian(payload));
        var extents = Extents(payload);
        Assert.Equal([(1u << 20, 3u), (8192u, 0u), ((3u << 20) - 8192, 3u)], extents);

        await c.SendRequestAsync(NbdCommand.BlockStatus, NbdCommandFlags.ReqOne, 10, 0, 4 << 20);
        (_, _, _, payload) = await c.ReadChunkAsync();
        Assert.Equal([(1u << 20, 3u)], Extents(payload));
    }

    private static List<(uint, uint)> Extents(byte[] payload)
    {
        var list = new List<(uint, uint)>();
        for (var i = 4; i < payload.Length; i += 8)
        {
            list.Add((BinaryPrimitives.ReadUInt32BigEndian(payload.AsSpan(i)), BinaryPrimitives.ReadUInt32BigEndian(payload.AsSpan(i + 4))));
        }
        return list;
    }

    [Fact]
    public async Task Error_codes_follow_the_protocol()
    {
        await using var fx = new ServerFixture();
        fx.AddMemoryExport("rw", 1 << 20);
        fx.AddMemoryExport("ro", 1 << 20, readOnly: true);
        await using var c = await RawNbdClient.ConnectAsync(fx.SocketPath);
        await c.HandshakeAsync("rw", structured: false);

        async Task<uint> Simple(NbdCommand cmd, NbdCommandFlags flags, ulong offset, uint length, byte[]? payload = null)
        {
            await c.SendRequestAsync(cmd, flags, 42, offset, length, payload ?? []);
            var (error, cookie) = await c.ReadSimpleReplyAsync();
            Assert.Equal(42UL, cookie);
            return error;
        }

        Assert.Equal(22u, await Simple(NbdCommand.Read, 0, (1 << 20) - 1, 2));                       // read past end: EINVAL
        Assert.Equal(28u, await Simple(NbdCommand.Write, 0, (1 << 20) - 1, 2, [1, 2]));             // write past end: ENOSPC
        Assert.Equal(28u, await Simple(NbdCommand.WriteZeroes, 0, 1 << 20, 1));                     // zero past end: ENOSPC
        Assert.Equal(22u, await Simple(NbdCommand.Trim, 0, 1 << 20, 1));                            // trim past end: EINVAL
        Assert.Equal(22u, await Simple((NbdCommand)99, 0, 0, 0));                                   // unknown command
        Assert.Equal(22u, await Simple(NbdCommand.Write, NbdCommandFlags.ReqOne, 0, 1, [1]));       // bad flag, payload drained
        Assert.Equal(22u, await Simple(NbdCommand.Read, NbdCommandFlags.DontFragment, 0, 1));      // DF without structured
        Assert.Equal(22u, await Simple(NbdCommand.BlockStatus, 0, 0, 4096));                        // no contexts
        Assert.Equal(22u, await Simple(NbdCommand.Read, 0, 0, 64u << 20));                          // oversized read
        Assert.Equal(22u, await Simple(NbdCommand.Write, 0, 0, 33u << 20, new byte[33 << 20]));    // oversized write, drained
        Assert.Equal(22u, await Simple(NbdCommand.Read, 0, ulong.MaxValue - 10, 100));              // offset overflow
        Assert.Equal(0u, await Simple(NbdCommand.WriteZeroes, NbdCommandFlags.FastZero | NbdCommandFlags.Fua, 0, 4096));
        Assert.Equal(0u, await Simple(NbdCommand.Trim, NbdCommandFlags.Fua, 0, 4096));
        Assert.Equal(0u, await Simple(NbdCommand.Cache, 0, 0, 4096));
        Assert.Equal(0u, await Simple(NbdCommand.Read, NbdCommandFlags.Fua, 0, 0));

        await using var r = await RawNbdClient.ConnectAsync(fx.SocketPath);
        await r.HandshakeAsync("ro", structured: false);
        await r.SendRequestAsync(NbdCommand.Write, NbdCommandFlags.Fua, 5, 0, 4, [1, 2, 3, 4]);
        Assert.Equal((1u, 5UL), await r.ReadSimpleReplyAsync());                                    // read-only: EPERM
        await r.SendRequestAsync(NbdCommand.Trim, 0, 6, 0, 4);
        Assert.Equal((1u, 6UL), await r.ReadSimpleReplyAsync());
        await r.SendRequestAsync(NbdCommand.Read, 0, 7, 0, 4);
        Assert.Equal((0u, 7UL), await r.ReadSimpleReplyAsync());
        Assert.Equal(new byte[4], await r.ReadExactAsync(4));
    }

    [Fact]
    public async Task Structured_read_errors_come_as_error_chunks()
    {
        await using var fx = new ServerFixture();
        fx.AddMemoryExport("disk", 1 << 20);
        await using var c = await RawNbdClient.ConnectAsync(fx.SocketPath);
        await c.HandshakeAsync("disk");
        await c.SendRequestAsync(NbdCommand.Read, 0, 3, 1 << 20, 10);
        var (done, type, cookie, payload) = await c.ReadChunkAsync();
        Assert.True(done);
        Assert.Equal(NbdReplyType.Error, type);
        Assert.Equal(3UL, cookie);
        Assert.Equal(22u, BinaryPrimitives.ReadUInt32BigEndian(payload));
        var messageLength = BinaryPrimitives.ReadUInt16BigEndian(payload.AsSpan(4));
        Assert.Equal(payload.Length - 6, messageLength);
        Assert.Contains("outside", Encoding.UTF8.GetString(payload, 6, messageLength));
    }

    [Fact]
    public async Task Sparse_reads_come_back_as_hole_and_data_chunks_unless_df_is_set()
    {
        await using var fx = new ServerFixture();
        var node = fx.AddMemoryExport("disk", 8 << 20);
        var island1 = Patterns.Make(5000, 100_000, 1);
        var island2 = Patterns.Make(70_000, 1 << 20, 2);
        await node.WriteAsync(100_000, island1, IoFlags.None);
        await node.WriteAsync(1 << 20, island2, IoFlags.None);
        await using var c = await RawNbdClient.ConnectAsync(fx.SocketPath);
        await c.HandshakeAsync("disk");

        var expected = new byte[2 << 20];
        island1.CopyTo(expected, 100_000 - 4096);
        island2.CopyTo(expected, (1 << 20) - 4096);

        await c.SendRequestAsync(NbdCommand.Read, 0, 1, 4096, 2 << 20);
        var types = new List<NbdReplyType>();
        var data = new byte[2 << 20];
        while (true)
        {
            var (done, type, _, payload) = await c.ReadChunkAsync();
            types.Add(type);
            var at = (int)(BinaryPrimitives.ReadUInt64BigEndian(payload) - 4096);
            if (type == NbdReplyType.OffsetData)
            {
                payload.AsSpan(8).CopyTo(data.AsSpan(at));
            }
            if (done)
            {
                break;
            }
        }
        Assert.Contains(NbdReplyType.OffsetHole, types);
        Assert.Equal(-1, Patterns.FirstDifference(expected, data));

        await c.SendRequestAsync(NbdCommand.Read, NbdCommandFlags.DontFragment, 2, 4096, 2 << 20);
        var single = await c.ReadChunkAsync();
        Assert.True(single.Done);
        Assert.Equal(NbdReplyType.OffsetData, single.Type);
        Assert.Equal(-1, Patterns.FirstDifference(expected, single.Payload.AsSpan(8)));
    }

    [Fact]
    public async Task Many_pipelined_requests_get_every_reply_once_in_any_order()
    {
        await using var fx = new ServerFixture();
        fx.AddMemoryExport("disk", 16 << 20);
        await using var c = await RawNbdClient.ConnectAsync(fx.SocketPath);
        await c.HandshakeAsync("disk");
        const int Count = 500;
        // Replies are read while requests are still being sent, as a real client does: a client that sends
        // everything before reading anything can fill the server's socket with replies and stall both sides.
        var seen = new HashSet<ulong>();
        var writeReplies = Task.Run(async () =>
        {
            for (var i = 0; i < Count; i++)
            {
                var (error, cookie) = await c.ReadSimpleReplyAsync();
                Assert.Equal(0u, error);
                Assert.True(seen.Add(cookie), $"cookie {cookie} answered twice");
            }
        });
        for (var i = 0; i < Count; i++)
        {
            var payload = Patterns.Make(4096, i * 4096L, i);
            await c.SendRequestAsync(NbdCommand.Write, 0, (ulong)i, (ulong)(i * 4096L), 4096, payload);
        }
        await writeReplies;
        var readSeen = new HashSet<ulong>();
        var readReplies = Task.Run(async () =>
        {
            for (var i = 0; i < Count; i++)
            {
                var (done, type, cookie, payload) = await c.ReadChunkAsync();
                Assert.True(done);
                Assert.Equal(NbdReplyType.OffsetData, type);
                Assert.True(readSeen.Add(cookie), $"cookie {cookie} answered twice");
                var index = (int)cookie - 1000;
                Assert.Equal(-1, Patterns.FirstDifference(Patterns.Make(4096, index * 4096L, index), payload.AsSpan(8)));
            }
        });
        for (var i = 0; i < Count; i++)
        {
            await c.SendRequestAsync(NbdCommand.Read, 0, (ulong)(1000 + i), (ulong)(i * 4096L), 4096);
        }
        await readReplies;
    }

    /// <summary>
    /// Reads of every size class around the sender's gather buffer: a reply whose header is gathered
    /// and whose data is sent on its own must still leave header first.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Reads_of_every_size_come_back_whole_and_in_order(bool structured)
    {
        await using var fx = new ServerFixture();
        var node = fx.AddMemoryExport("disk", 4 << 20);
        var content = Patterns.Make(4 << 20, 0, 9);
        await node.WriteAsync(0, content, IoFlags.None);
        await using var c = await RawNbdClient.ConnectAsync(fx.SocketPath);
        await c.HandshakeAsync("disk", structured);
        int[] sizes = [1, 512, 4096, 32 << 10, (32 << 10) + 512, 48 << 10, 56 << 10, (64 << 10) - 512, (64 << 10) - 16, 64 << 10, (64 << 10) + 4096, 1 << 20];
        ulong cookie = 0;
        foreach (var size in sizes)
        {
            foreach (var offset in new long[] { 0, 4096, 12345 })
            {
                // Two back to back, so one batch holds a gathered header and a large segment.
                await c.SendRequestAsync(NbdCommand.Read, 0, ++cookie, (ulong)offset, (uint)size);
                await c.SendRequestAsync(NbdCommand.Read, 0, ++cookie, (ulong)(offset + 8192), (uint)size);
                for (var k = 0; k < 2; k++)
                {
                    byte[] data;
                    ulong got;
                    if (structured)
                    {
                        var (done, type, chunkCookie, payload) = await c.ReadChunkAsync();
                        Assert.True(done);
                        Assert.Equal(NbdReplyType.OffsetData, type);
                        got = chunkCookie;
                        data = payload[8..];
                    }
                    else
                    {
                        var (error, replyCookie) = await c.ReadSimpleReplyAsync();
                        Assert.Equal(0u, error);
                        got = replyCookie;
                        data = await c.ReadExactAsync(size);
                    }
                    var at = offset + (got == cookie ? 8192 : 0);
                    Assert.True(got == cookie || got == cookie - 1, $"unexpected cookie {got}");
                    Assert.Equal(-1, Patterns.FirstDifference(content.AsSpan((int)at, size), data));
                }
            }
        }
    }
}
