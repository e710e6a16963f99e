using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;
using Blockshot.Nbd.Protocol;

namespace Blockshot.Nbd.Tests;

/// <summary>A deliberately low-level client that can speak the protocol correctly or break it.</summary>
public sealed class RawNbdClient : IAsyncDisposable
{
    private readonly Socket _socket;

    private RawNbdClient(Socket socket)
    {
        _socket = socket;
    }

    public Socket Socket => _socket;

    public static async Task<RawNbdClient> ConnectAsync(string path)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(path));
        return new RawNbdClient(socket);
    }

    public async Task SendAsync(ReadOnlyMemory<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            var n = await _socket.SendAsync(bytes, SocketFlags.None);
            bytes = bytes[n..];
        }
    }

    public async Task<byte[]> ReadExactAsync(int count, TimeSpan? timeout = null)
    {
        var buffer = new byte[count];
        var got = 0;
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        while (got < count)
        {
            var n = await _socket.ReceiveAsync(buffer.AsMemory(got), SocketFlags.None, cts.Token);
            if (n == 0)
            {
                throw new EndOfStreamException($"server closed after {got} of {count} bytes");
            }
            got += n;
        }
        return buffer;
    }

    /// <summary>True when the server closes the connection within the timeout.</summary>
    public async Task<bool> ServerClosesAsync(TimeSpan timeout)
    {
        var buffer = new byte[4096];
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            while (true)
            {
                var n = await _socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
                if (n == 0)
                {
                    return true;
                }
            }
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        catch (SocketException)
        {
            return true;
        }
    }

    public async Task ReadGreetingAsync()
    {
        var greeting = await ReadExactAsync(18);
        Assert.Equal(NbdMagic.InitPassword, BinaryPrimitives.ReadUInt64BigEndian(greeting));
        Assert.Equal(NbdMagic.HaveOptions, BinaryPrimitives.ReadUInt64BigEndian(greeting.AsSpan(8)));
        Assert.Equal(3, BinaryPrimitives.ReadUInt16BigEndian(greeting.AsSpan(16)));
    }

    public Task SendClientFlagsAsync(uint flags = 3)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, flags);
        return SendAsync(b);
    }

    public Task SendOptionAsync(uint option, ReadOnlySpan<byte> data) => SendOptionAsync(option, (uint)data.Length, data);

    public Task SendOptionAsync(uint option, uint declaredLength, ReadOnlySpan<byte> data)
    {
        var b = new byte[16 + data.Length];
        BinaryPrimitives.WriteUInt64BigEndian(b, NbdMagic.HaveOptions);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(8), option);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(12), declaredLength);
        data.CopyTo(b.AsSpan(16));
        return SendAsync(b);
    }

    public async Task<(uint Option, NbdOptionReplyType Type, byte[] Data)> ReadOptionReplyAsync()
    {
        var h = await ReadExactAsync(20);
        Assert.Equal(NbdMagic.OptionReply, BinaryPrimitives.ReadUInt64BigEndian(h));
        var length = BinaryPrimitives.ReadUInt32BigEndian(h.AsSpan(16));
        var data = await ReadExactAsync((int)length);
        return (BinaryPrimitives.ReadUInt32BigEndian(h.AsSpan(8)), (NbdOptionReplyType)BinaryPrimitives.ReadUInt32BigEndian(h.AsSpan(12)), data);
    }

    public static byte[] GoData(string name, params NbdInfoType[] infos)
    {
        var n = Encoding.UTF8.GetBytes(name);
        var b = new byte[4 + n.Length + 2 + 2 * infos.Length];
        BinaryPrimitives.WriteUInt32BigEndian(b, (uint)n.Length);
        n.CopyTo(b, 4);
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(4 + n.Length), (ushort)infos.Length);
        for (var i = 0; i < infos.Length; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(6 + n.Length + 2 * i), (ushort)infos[i]);
        }
        return b;
    }

    public static byte[] MetaData(string export, params string[] queries)
    {
        var ms = new MemoryStream();
        void U32(uint v)
        {
            var t = new byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(t, v);
            ms.Write(t);
        }
        var e = Encoding.UTF8.GetBytes(export);
        U32((uint)e.Length);
        ms.Write(e);
        U32((uint)queries.Length);
        foreach (var q in queries)
        {
            var qb = Encoding.UTF8.GetBytes(q);
            U32((uint)qb.Length);
            ms.Write(qb);
        }
        return ms.ToArray();
    }

    /// <summary>Full handshake with GO; returns size and transmission flags.</summary>
    public async Task<(ulong Size, NbdTransmissionFlags Flags)> HandshakeAsync(string export, bool structured = true, params string[] contexts)
    {
        await ReadGreetingAsync();
        await SendClientFlagsAsync();
        if (structured)
        {
            await SendOptionAsync((uint)NbdOption.StructuredReply, []);
            Assert.Equal(NbdOptionReplyType.Ack, (await ReadOptionReplyAsync()).Type);
        }
        if (contexts.Length > 0)
        {
            await SendOptionAsync((uint)NbdOption.SetMetaContext, MetaData(export, contexts));
            while ((await ReadOptionReplyAsync()).Type != NbdOptionReplyType.Ack)
            {
            }
        }
        await SendOptionAsync((uint)NbdOption.Go, GoData(export));
        ulong size = 0;
        NbdTransmissionFlags flags = 0;
        while (true)
        {
            var (_, type, data) = await ReadOptionReplyAsync();
            if (type == NbdOptionReplyType.Ack)
            {
                break;
            }
            Assert.Equal(NbdOptionReplyType.Info, type);
            if (BinaryPrimitives.ReadUInt16BigEndian(data) == 0)
            {
                size = BinaryPrimitives.ReadUInt64BigEndian(data.AsSpan(2));
                flags = (NbdTransmissionFlags)BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(10));
            }
        }
        return (size, flags);
    }

    public Task SendRequestAsync(NbdCommand command, NbdCommandFlags flags, ulong cookie, ulong offset, uint length, ReadOnlySpan<byte> payload = default)
    {
        var b = new byte[28 + payload.Length];
        new NbdRequest(flags, command, cookie, offset, length).Write(b);
        payload.CopyTo(b.AsSpan(28));
        return SendAsync(b);
    }

    public async Task<(uint Error, ulong Cookie)> ReadSimpleReplyAsync()
    {
        var h = await ReadExactAsync(16);
        Assert.Equal(NbdMagic.SimpleReply, BinaryPrimitives.ReadUInt32BigEndian(h));
        return (BinaryPrimitives.ReadUInt32BigEndian(h.AsSpan(4)), BinaryPrimitives.ReadUInt64BigEndian(h.AsSpan(8)));
    }

    public async Task<(bool Done, NbdReplyType Type, ulong Cookie, byte[] Payload)> ReadChunkAsync()
    {
        var h = await ReadExactAsync(20);
        Assert.Equal(NbdMagic.StructuredReply, BinaryPrimitives.ReadUInt32BigEndian(h));
        var length = BinaryPrimitives.ReadUInt32BigEndian(h.AsSpan(16));
        return ((BinaryPrimitives.ReadUInt16BigEndian(h.AsSpan(4)) & 1) != 0,
            (NbdReplyType)BinaryPrimitives.ReadUInt16BigEndian(h.AsSpan(6)),
            BinaryPrimitives.ReadUInt64BigEndian(h.AsSpan(8)),
            await ReadExactAsync((int)length));
    }

    /// <summary>Reads a structured reply to its end; returns the error of an error chunk (0 if none) and the data.</summary>
    public async Task<(uint Error, byte[] Data)> ReadStructuredReadAsync(ulong offset, int length)
    {
        var data = new byte[length];
        uint error = 0;
        while (true)
        {
            var (done, type, _, payload) = await ReadChunkAsync();
            switch (type)
            {
                case NbdReplyType.OffsetData:
                    var at = BinaryPrimitives.ReadUInt64BigEndian(payload) - offset;
                    payload.AsSpan(8).CopyTo(data.AsSpan((int)at));
                    break;
                case NbdReplyType.OffsetHole:
                    var hole = BinaryPrimitives.ReadUInt64BigEndian(payload) - offset;
                    data.AsSpan((int)hole, (int)BinaryPrimitives.ReadUInt32BigEndian(payload.AsSpan(8))).Clear();
                    break;
                case NbdReplyType.Error:
                    error = BinaryPrimitives.ReadUInt32BigEndian(payload);
                    break;
                case NbdReplyType.None:
                    break;
                default:
                    throw new Xunit.Sdk.XunitException($"unexpected chunk {type}");
            }
            if (done)
            {
                return (error, data);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _socket.Dispose();
        await Task.CompletedTask;
    }
}
