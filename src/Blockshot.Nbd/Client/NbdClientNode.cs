using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net.Sockets;
using Blockshot.Core;
using Blockshot.Core.Extents;
using Blockshot.Nbd.Protocol;

namespace Blockshot.Nbd.Client;

/// <summary>
/// A remote NBD export as a block node, with many requests in flight on one connection: requests are
/// sent under a lock as they come, and one reader task matches replies to them by cookie, so replies may
/// arrive in any order. Reads land directly in the caller's buffer. Used to copy to and from NBD servers
/// (convert, backups, restores). Negotiated like <see cref="NbdClient"/>: structured replies and
/// <c>base:allocation</c>.
/// </summary>
public sealed partial class NbdClientNode : BlockNode
{
    /// <summary>The largest single request sent; bigger ones are split.</summary>
    public const int MaxRequest = 32 << 20;

    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly SemaphoreSlim _send = new(1, 1);
    private readonly ConcurrentDictionary<ulong, PendingRequest> _pending = new();
    private readonly NbdTransmissionFlags _flags;
    private readonly bool _allocation;
    private readonly long _size;
    private readonly Task _reader;
    private long _cookie;
    private volatile Exception? _broken;

    private NbdClientNode(NbdClient client)
    {
        _socket = client.Detach();
        _stream = new NetworkStream(_socket, ownsSocket: false);
        _flags = client.Flags;
        _allocation = client.HasAllocation;
        _size = client.Size;
        Uri = client.Export;
        _reader = Task.Run(ReadRepliesAsync);
    }

    /// <summary>The export name.</summary>
    public string Uri { get; }

    /// <inheritdoc/>
    public override string Kind => "nbd";

    /// <inheritdoc/>
    public override long Size => _size;

    /// <summary>The export's transmission flags.</summary>
    public NbdTransmissionFlags Flags => _flags;

    /// <summary>Connects to the export an NBD URI names.</summary>
    public static async Task<NbdClientNode> ConnectAsync(NbdUri uri, CancellationToken cancellationToken = default)
    {
        var client = await NbdClient.ConnectAsync(uri, cancellationToken).ConfigureAwait(false);
        return new NbdClientNode(client);
    }

    /// <inheritdoc/>
    protected override NodeCapabilities ComputeCapabilities()
    {
        var f = NodeFeatures.None;
        if ((_flags & NbdTransmissionFlags.ReadOnly) == 0)
        {
            f |= NodeFeatures.Write;
            f |= Has(NbdTransmissionFlags.SendTrim) ? NodeFeatures.Trim : 0;
            f |= Has(NbdTransmissionFlags.SendWriteZeroes) ? NodeFeatures.WriteZeroes : 0;
            f |= Has(NbdTransmissionFlags.SendFastZero) ? NodeFeatures.FastZero : 0;
            f |= Has(NbdTransmissionFlags.SendFua) ? NodeFeatures.Fua : 0;
        }
        f |= Has(NbdTransmissionFlags.SendFlush) ? NodeFeatures.Flush : 0;
        f |= Has(NbdTransmissionFlags.CanMultiConn) ? NodeFeatures.MultiConn : 0;
        f |= _allocation ? NodeFeatures.Extents : 0;
        return new NodeCapabilities(f, MaxBlockSize: MaxRequest);
    }

    private bool Has(NbdTransmissionFlags flag) => (_flags & flag) != 0;

    /// <inheritdoc/>
    public override async ValueTask ReadAsync(long offset, Memory<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            var n = Math.Min(buffer.Length, MaxRequest);
            var request = new PendingRequest("read", offset, buffer[..n], null);
            await SendAsync(request, NbdCommand.Read, NbdCommandFlags.None, offset, (uint)n, default).ConfigureAwait(false);
            await request.Completion.ConfigureAwait(false);
            buffer = buffer[n..];
            offset += n;
        }
    }

    /// <inheritdoc/>
    public override async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, IoFlags flags)
    {
        var fua = (flags & IoFlags.Fua) != 0 && Has(NbdTransmissionFlags.SendFua) ? NbdCommandFlags.Fua : NbdCommandFlags.None;
        while (!data.IsEmpty)
        {
            var n = Math.Min(data.Length, MaxRequest);
            var request = new PendingRequest("write", offset, default, null);
            await SendAsync(request, NbdCommand.Write, fua, offset, (uint)n, data[..n]).ConfigureAwait(false);
            await request.Completion.ConfigureAwait(false);
            data = data[n..];
            offset += n;
        }
    }

    /// <inheritdoc/>
    public override async ValueTask WriteZeroesAsync(long offset, long length, IoFlags flags)
    {
        if (!Has(NbdTransmissionFlags.SendWriteZeroes))
        {
            if ((flags & IoFlags.FastZero) != 0)
            {
                BlockThrow.NotSupported("the NBD export cannot zero quickly");
            }
            await base.WriteZeroesAsync(offset, length, flags).ConfigureAwait(false);
            return;
        }
        var f = (flags & IoFlags.MayTrim) != 0 ? NbdCommandFlags.None : NbdCommandFlags.NoHole;
        f |= (flags & IoFlags.Fua) != 0 && Has(NbdTransmissionFlags.SendFua) ? NbdCommandFlags.Fua : 0;
        f |= (flags & IoFlags.FastZero) != 0 ? NbdCommandFlags.FastZero : 0;
        await ForEachPieceAsync("write-zeroes", NbdCommand.WriteZeroes, f, offset, length).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public override ValueTask TrimAsync(long offset, long length, IoFlags flags) =>
        Has(NbdTransmissionFlags.SendTrim) ? ForEachPieceAsync("trim", NbdCommand.Trim, NbdCommandFlags.None, offset, length) : default;

    /// <inheritdoc/>
    public override async ValueTask FlushAsync()
    {
        if (!Has(NbdTransmissionFlags.SendFlush))
        {
            return;
        }
        var request = new PendingRequest("flush", 0, default, null);
        await SendAsync(request, NbdCommand.Flush, NbdCommandFlags.None, 0, 0, default).ConfigureAwait(false);
        await request.Completion.ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public override async ValueTask GetExtentsAsync(long offset, long length, ExtentList extents)
    {
        if (!_allocation)
        {
            extents.Add(length, AllocationFlags.Data);
            return;
        }
        var n = (uint)Math.Min(length, uint.MaxValue & ~0xfffL);
        var request = new PendingRequest("block status", offset, default, extents);
        await SendAsync(request, NbdCommand.BlockStatus, NbdCommandFlags.None, offset, n, default).ConfigureAwait(false);
        await request.Completion.ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public override string Describe() => $"nbd({Uri})";

    private async ValueTask ForEachPieceAsync(string operation, NbdCommand command, NbdCommandFlags flags, long offset, long length)
    {
        while (length > 0)
        {
            var n = (int)Math.Min(length, MaxRequest);
            var request = new PendingRequest(operation, offset, default, null);
            await SendAsync(request, command, flags, offset, (uint)n, default).ConfigureAwait(false);
            await request.Completion.ConfigureAwait(false);
            offset += n;
            length -= n;
        }
    }

    private async ValueTask SendAsync(PendingRequest request, NbdCommand command, NbdCommandFlags flags, long offset, uint length, ReadOnlyMemory<byte> payload)
    {
        if (_broken is { } broken)
        {
            throw new IOException($"the NBD connection failed earlier: {broken.Message}", broken);
        }
        var cookie = (ulong)Interlocked.Increment(ref _cookie);
        _pending[cookie] = request;
        if (_broken is { } late && _pending.TryRemove(cookie, out _))
        {
            throw new IOException($"the NBD connection failed: {late.Message}", late);
        }
        var header = new byte[NbdMagic.RequestSize];
        new NbdRequest(flags, command, cookie, (ulong)offset, length).Write(header);
        await _send.WaitAsync().ConfigureAwait(false);
        try
        {
            await _socket.SendAsync(header, SocketFlags.None).ConfigureAwait(false);
            while (!payload.IsEmpty)
            {
                var n = await _socket.SendAsync(payload, SocketFlags.None).ConfigureAwait(false);
                payload = payload[n..];
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            _pending.TryRemove(cookie, out _);
            Break(e);
            throw new IOException($"NBD {request.Operation} could not be sent: {e.Message}", e);
        }
        finally
        {
            _send.Release();
        }
    }

    /// <summary>Sends NBD_CMD_DISC, closes the connection and waits for the reader to end.</summary>
    protected override async ValueTask DisposeCoreAsync()
    {
        await _send.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_broken is null)
            {
                var header = new byte[NbdMagic.RequestSize];
                new NbdRequest(NbdCommandFlags.None, NbdCommand.Disconnect, 0, 0, 0).Write(header);
                await _socket.SendAsync(header, SocketFlags.None).ConfigureAwait(false);
                _socket.Shutdown(SocketShutdown.Send);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The server is gone already; closing is all that is left.
        }
        finally
        {
            _send.Release();
        }
        Break(new ObjectDisposedException(nameof(NbdClientNode)));
        _socket.Dispose();
        try
        {
            await _reader.ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            // The reader ends with the socket; its failure was already given to every waiting request.
        }
        await _stream.DisposeAsync().ConfigureAwait(false);
        _send.Dispose();
    }

    private void Break(Exception e)
    {
        _broken ??= e;
        foreach (var cookie in _pending.Keys)
        {
            if (_pending.TryRemove(cookie, out var request))
            {
                request.Fail(new IOException($"NBD {request.Operation} failed: the connection broke ({e.Message})", e));
            }
        }
    }

    private static uint ReadU32(ReadOnlySpan<byte> b) => BinaryPrimitives.ReadUInt32BigEndian(b);
}
