using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;
using Blockshot.Core.Extents;
using Blockshot.Nbd.Protocol;

namespace Blockshot.Nbd.Client;

/// <summary>
/// A small NBD client: fixed newstyle with GO, structured replies and one status context
/// (<c>base:allocation</c> unless told another, such as <c>qemu:dirty-bitmap:NAME</c>), one request at a time. It serves the demo, tools that copy to or from an NBD target, and tests; bulk
/// transfers use the external clients the benchmarks compare against.
/// </summary>
public sealed partial class NbdClient : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly string _contextQuery;
    private ulong _cookie;

    private NbdClient(Socket socket, string export, string contextQuery = AllocationContext)
    {
        _socket = socket;
        Export = export;
        _contextQuery = contextQuery;
    }

    /// <summary>The status context asked for unless the caller names another.</summary>
    public const string AllocationContext = "base:allocation";

    /// <summary>The export this client is attached to.</summary>
    public string Export { get; }

    /// <summary>The export size.</summary>
    public long Size { get; private set; }

    /// <summary>The export's transmission flags.</summary>
    public NbdTransmissionFlags Flags { get; private set; }

    /// <summary>True when base:allocation was negotiated.</summary>
    public bool HasAllocation => MetaContext == AllocationContext;

    /// <summary>The status context the server agreed to (what <see cref="GetExtentsAsync"/> describes), or null.</summary>
    public string? MetaContext { get; private set; }

    /// <summary>Connects to a Unix socket and attaches to <paramref name="export"/>.</summary>
    public static Task<NbdClient> ConnectUnixAsync(string path, string export, CancellationToken cancellationToken = default) =>
        ConnectUnixAsync(path, export, AllocationContext, cancellationToken);

    /// <summary>
    /// Connects to a Unix socket, attaches to <paramref name="export"/> and asks for the status context
    /// <paramref name="metaContext"/> (see <see cref="MetaContext"/> for whether the server has it).
    /// </summary>
    public static async Task<NbdClient> ConnectUnixAsync(string path, string export, string metaContext, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(metaContext);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken).ConfigureAwait(false);
            var client = new NbdClient(socket, export, metaContext);
            await client.HandshakeAsync(cancellationToken).ConfigureAwait(false);
            return client;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Reads <paramref name="buffer"/>.Length bytes at <paramref name="offset"/>.</summary>
    public async Task ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var cookie = await SendRequestAsync(NbdCommand.Read, NbdCommandFlags.None, offset, (uint)buffer.Length, default, cancellationToken).ConfigureAwait(false);
        while (true)
        {
            var (done, type, payload) = await ReadChunkAsync(cookie, cancellationToken).ConfigureAwait(false);
            switch (type)
            {
                case NbdReplyType.OffsetData:
                    var at = (int)((long)BinaryPrimitives.ReadUInt64BigEndian(payload) - offset);
                    payload.AsSpan(8).CopyTo(buffer.Span[at..]);
                    break;
                case NbdReplyType.OffsetHole:
                    var hole = (int)((long)BinaryPrimitives.ReadUInt64BigEndian(payload) - offset);
                    buffer.Span.Slice(hole, (int)BinaryPrimitives.ReadUInt32BigEndian(payload.AsSpan(8))).Clear();
                    break;
                case NbdReplyType.Error or NbdReplyType.ErrorOffset:
                    throw ErrorFrom(payload, "read");
                case NbdReplyType.None:
                    break;
                default:
                    throw new IOException($"unexpected reply chunk {type} to a read");
            }
            if (done)
            {
                return;
            }
        }
    }

    /// <summary>Writes <paramref name="data"/> at <paramref name="offset"/>.</summary>
    public async Task WriteAsync(long offset, ReadOnlyMemory<byte> data, bool fua = false, CancellationToken cancellationToken = default)
    {
        var cookie = await SendRequestAsync(NbdCommand.Write, fua ? NbdCommandFlags.Fua : NbdCommandFlags.None, offset, (uint)data.Length, data, cancellationToken).ConfigureAwait(false);
        await ReadSimpleReplyAsync(cookie, "write", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Zeroes a range (may deallocate it).</summary>
    public async Task WriteZeroesAsync(long offset, long length, CancellationToken cancellationToken = default)
    {
        var cookie = await SendRequestAsync(NbdCommand.WriteZeroes, NbdCommandFlags.None, offset, checked((uint)length), default, cancellationToken).ConfigureAwait(false);
        await ReadSimpleReplyAsync(cookie, "write-zeroes", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Flushes the export.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken = default)
    {
        var cookie = await SendRequestAsync(NbdCommand.Flush, NbdCommandFlags.None, 0, 0, default, cancellationToken).ConfigureAwait(false);
        await ReadSimpleReplyAsync(cookie, "flush", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The extents of a range in the negotiated status context (at most 4 GiB per call); flags are the
    /// context's own (for <c>base:allocation</c>, <see cref="Blockshot.Core.Extents.AllocationFlags"/>; for a
    /// dirty bitmap, 1 = dirty). Without a context, the whole range as one extent with flags 0.
    /// </summary>
    public async Task<IReadOnlyList<Extent>> GetExtentsAsync(long offset, uint length, CancellationToken cancellationToken = default)
    {
        if (MetaContext is null)
        {
            return [new Extent(offset, length, 0)];
        }
        var cookie = await SendRequestAsync(NbdCommand.BlockStatus, NbdCommandFlags.None, offset, length, default, cancellationToken).ConfigureAwait(false);
        var extents = new List<Extent>();
        while (true)
        {
            var (done, type, payload) = await ReadChunkAsync(cookie, cancellationToken).ConfigureAwait(false);
            if (type is NbdReplyType.Error or NbdReplyType.ErrorOffset)
            {
                throw ErrorFrom(payload, "block status");
            }
            if (type == NbdReplyType.BlockStatus)
            {
                var at = offset;
                for (var i = 4; i + 8 <= payload.Length; i += 8)
                {
                    var n = BinaryPrimitives.ReadUInt32BigEndian(payload.AsSpan(i));
                    extents.Add(new Extent(at, n, BinaryPrimitives.ReadUInt32BigEndian(payload.AsSpan(i + 4))));
                    at += n;
                }
            }
            if (done)
            {
                return extents;
            }
        }
    }

    /// <summary>Sends NBD_CMD_DISC and closes.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            await SendRequestAsync(NbdCommand.Disconnect, NbdCommandFlags.None, 0, 0, default, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The server is already gone; closing is all that is left.
        }
        _socket.Dispose();
    }

    private async Task HandshakeAsync(CancellationToken ct)
    {
        var greeting = await ReadExactAsync(18, ct).ConfigureAwait(false);
        if (BinaryPrimitives.ReadUInt64BigEndian(greeting) != NbdMagic.InitPassword
            || BinaryPrimitives.ReadUInt64BigEndian(greeting.AsSpan(8)) != NbdMagic.HaveOptions)
        {
            throw new IOException("the peer is not a newstyle NBD server");
        }
        var serverFlags = BinaryPrimitives.ReadUInt16BigEndian(greeting.AsSpan(16));
        var clientFlags = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(clientFlags, 1u | (serverFlags & 2u));
        await SendAllAsync(clientFlags, ct).ConfigureAwait(false);

        await SendOptionAsync(NbdOption.StructuredReply, [], ct).ConfigureAwait(false);
        var structured = (await ReadOptionRepliesAsync(NbdOption.StructuredReply, ct).ConfigureAwait(false)).Error is null;
        if (structured)
        {
            await SendOptionAsync(NbdOption.SetMetaContext, MetaRequest(Export, _contextQuery), ct).ConfigureAwait(false);
            var meta = await ReadOptionRepliesAsync(NbdOption.SetMetaContext, ct).ConfigureAwait(false);
            MetaContext = meta.Replies.Any(r => r.Type == NbdOptionReplyType.MetaContext) ? _contextQuery : null;
        }
        var name = Encoding.UTF8.GetBytes(Export);
        var go = new byte[4 + name.Length + 2];
        BinaryPrimitives.WriteUInt32BigEndian(go, (uint)name.Length);
        name.CopyTo(go, 4);
        await SendOptionAsync(NbdOption.Go, go, ct).ConfigureAwait(false);
        var (error, replies) = await ReadOptionRepliesAsync(NbdOption.Go, ct).ConfigureAwait(false);
        if (error is not null)
        {
            throw new IOException($"server refused export '{Export}': {error}");
        }
        foreach (var (type, data) in replies)
        {
            if (type == NbdOptionReplyType.Info && data.Length >= 12 && BinaryPrimitives.ReadUInt16BigEndian(data) == (ushort)NbdInfoType.Export)
            {
                Size = (long)BinaryPrimitives.ReadUInt64BigEndian(data.AsSpan(2));
                Flags = (NbdTransmissionFlags)BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(10));
            }
        }
        if (!structured)
        {
            throw new IOException("the server does not offer structured replies");
        }
    }

    private static byte[] MetaRequest(string export, string query)
    {
        var e = Encoding.UTF8.GetBytes(export);
        var q = Encoding.UTF8.GetBytes(query);
        var b = new byte[4 + e.Length + 4 + 4 + q.Length];
        BinaryPrimitives.WriteUInt32BigEndian(b, (uint)e.Length);
        e.CopyTo(b, 4);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(4 + e.Length), 1);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(8 + e.Length), (uint)q.Length);
        q.CopyTo(b, 12 + e.Length);
        return b;
    }

    private async Task SendOptionAsync(NbdOption option, byte[] data, CancellationToken ct)
    {
        var b = new byte[16 + data.Length];
        BinaryPrimitives.WriteUInt64BigEndian(b, NbdMagic.HaveOptions);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(8), (uint)option);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(12), (uint)data.Length);
        data.CopyTo(b, 16);
        await SendAllAsync(b, ct).ConfigureAwait(false);
    }

    private async Task<(string? Error, List<(NbdOptionReplyType Type, byte[] Data)> Replies)> ReadOptionRepliesAsync(NbdOption option, CancellationToken ct)
    {
        var replies = new List<(NbdOptionReplyType, byte[])>();
        while (true)
        {
            var header = await ReadExactAsync(20, ct).ConfigureAwait(false);
            if (BinaryPrimitives.ReadUInt64BigEndian(header) != NbdMagic.OptionReply
                || BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(8)) != (uint)option)
            {
                throw new IOException("malformed option reply");
            }
            var type = (NbdOptionReplyType)BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(12));
            var data = await ReadExactAsync((int)BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(16)), ct).ConfigureAwait(false);
            if (((uint)type & 0x80000000) != 0)
            {
                return ($"{type}: {Encoding.UTF8.GetString(data)}", replies);
            }
            if (type == NbdOptionReplyType.Ack)
            {
                return (null, replies);
            }
            replies.Add((type, data));
        }
    }

    private async Task<ulong> SendRequestAsync(NbdCommand command, NbdCommandFlags flags, long offset, uint length, ReadOnlyMemory<byte> payload, CancellationToken ct)
    {
        var cookie = ++_cookie;
        var header = new byte[NbdMagic.RequestSize];
        new NbdRequest(flags, command, cookie, (ulong)offset, length).Write(header);
        await SendAllAsync(header, ct).ConfigureAwait(false);
        if (!payload.IsEmpty)
        {
            await SendAllAsync(payload, ct).ConfigureAwait(false);
        }
        return cookie;
    }

    private async Task ReadSimpleReplyAsync(ulong cookie, string what, CancellationToken ct)
    {
        var header = await ReadExactAsync(4, ct).ConfigureAwait(false);
        var magic = BinaryPrimitives.ReadUInt32BigEndian(header);
        if (magic == NbdMagic.StructuredReply)
        {
            var rest = await ReadExactAsync(16, ct).ConfigureAwait(false);
            var payload = await ReadExactAsync((int)BinaryPrimitives.ReadUInt32BigEndian(rest.AsSpan(12)), ct).ConfigureAwait(false);
            var type = (NbdReplyType)BinaryPrimitives.ReadUInt16BigEndian(rest.AsSpan(2));
            if (type is NbdReplyType.Error or NbdReplyType.ErrorOffset)
            {
                throw ErrorFrom(payload, what);
            }
            return;
        }
        if (magic != NbdMagic.SimpleReply)
        {
            throw new IOException("malformed reply");
        }
        var tail = await ReadExactAsync(12, ct).ConfigureAwait(false);
        var error = BinaryPrimitives.ReadUInt32BigEndian(tail);
        if (BinaryPrimitives.ReadUInt64BigEndian(tail.AsSpan(4)) != cookie)
        {
            throw new IOException("reply for an unknown request");
        }
        if (error != 0)
        {
            throw new NbdClientException(what, (int)error, null);
        }
    }

    private async Task<(bool Done, NbdReplyType Type, byte[] Payload)> ReadChunkAsync(ulong cookie, CancellationToken ct)
    {
        var header = await ReadExactAsync(4, ct).ConfigureAwait(false);
        var magic = BinaryPrimitives.ReadUInt32BigEndian(header);
        if (magic == NbdMagic.SimpleReply)
        {
            var tail = await ReadExactAsync(12, ct).ConfigureAwait(false);
            throw new NbdClientException("request", (int)BinaryPrimitives.ReadUInt32BigEndian(tail), "simple reply where a structured one was due");
        }
        if (magic != NbdMagic.StructuredReply)
        {
            throw new IOException("malformed reply");
        }
        var rest = await ReadExactAsync(16, ct).ConfigureAwait(false);
        if (BinaryPrimitives.ReadUInt64BigEndian(rest.AsSpan(4)) != cookie)
        {
            throw new IOException("reply for an unknown request");
        }
        var payload = await ReadExactAsync((int)BinaryPrimitives.ReadUInt32BigEndian(rest.AsSpan(12)), ct).ConfigureAwait(false);
        return ((BinaryPrimitives.ReadUInt16BigEndian(rest) & 1) != 0, (NbdReplyType)BinaryPrimitives.ReadUInt16BigEndian(rest.AsSpan(2)), payload);
    }

    private static NbdClientException ErrorFrom(byte[] payload, string what)
    {
        var error = payload.Length >= 4 ? (int)BinaryPrimitives.ReadUInt32BigEndian(payload) : 5;
        var message = payload.Length >= 6 ? Encoding.UTF8.GetString(payload, 6, Math.Min(BinaryPrimitives.ReadUInt16BigEndian(payload.AsSpan(4)), payload.Length - 6)) : null;
        return new NbdClientException(what, error, message);
    }

    private async Task SendAllAsync(ReadOnlyMemory<byte> bytes, CancellationToken ct)
    {
        while (!bytes.IsEmpty)
        {
            var n = await _socket.SendAsync(bytes, SocketFlags.None, ct).ConfigureAwait(false);
            bytes = bytes[n..];
        }
    }

    private async Task<byte[]> ReadExactAsync(int count, CancellationToken ct)
    {
        var buffer = new byte[count];
        var got = 0;
        while (got < count)
        {
            var n = await _socket.ReceiveAsync(buffer.AsMemory(got), SocketFlags.None, ct).ConfigureAwait(false);
            if (n == 0)
            {
                throw new EndOfStreamException("the NBD server closed the connection");
            }
            got += n;
        }
        return buffer;
    }
}
