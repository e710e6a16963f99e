using System.Buffers.Binary;
using System.Text;
using Blockshot.Core.Extents;
using Blockshot.Nbd.Protocol;

namespace Blockshot.Nbd.Client;

// The reader: one task that reads every reply and completes the request it belongs to.
public sealed partial class NbdClientNode
{
    private async Task ReadRepliesAsync()
    {
        var header = new byte[20];
        var small = new byte[64];
        try
        {
            while (true)
            {
                await _stream.ReadExactlyAsync(header.AsMemory(0, 4)).ConfigureAwait(false);
                var magic = ReadU32(header);
                if (magic == NbdMagic.SimpleReply)
                {
                    await _stream.ReadExactlyAsync(header.AsMemory(4, 12)).ConfigureAwait(false);
                    var request = Take(BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(8)));
                    var error = ReadU32(header.AsSpan(4));
                    if (error != 0)
                    {
                        request.Error ??= ((int)error, null);
                    }
                    request.Complete();
                    continue;
                }
                if (magic != NbdMagic.StructuredReply)
                {
                    throw new IOException($"malformed NBD reply (magic 0x{magic:x8})");
                }
                await _stream.ReadExactlyAsync(header.AsMemory(4, 16)).ConfigureAwait(false);
                var done = (BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(4)) & 1) != 0;
                var type = (NbdReplyType)BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(6));
                var cookie = BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(8));
                var length = (int)ReadU32(header.AsSpan(16));
                if (!_pending.TryGetValue(cookie, out var pending))
                {
                    throw new IOException($"NBD reply for an unknown request (cookie {cookie})");
                }
                await ReadChunkAsync(pending, type, length, small).ConfigureAwait(false);
                if (done)
                {
                    _pending.TryRemove(cookie, out _);
                    pending.Complete();
                }
            }
        }
        catch (Exception e) when (e is IOException or EndOfStreamException or ObjectDisposedException or System.Net.Sockets.SocketException or OperationCanceledException)
        {
            Break(e);
        }
    }

    private PendingRequest Take(ulong cookie) =>
        _pending.TryRemove(cookie, out var request) ? request : throw new IOException($"NBD reply for an unknown request (cookie {cookie})");

    private async Task ReadChunkAsync(PendingRequest request, NbdReplyType type, int length, byte[] small)
    {
        switch (type)
        {
            case NbdReplyType.OffsetData:
                {
                    await _stream.ReadExactlyAsync(small.AsMemory(0, 8)).ConfigureAwait(false);
                    var at = (long)BinaryPrimitives.ReadUInt64BigEndian(small) - request.Offset;
                    var n = length - 8;
                    if (at < 0 || at + n > request.ReadBuffer.Length)
                    {
                        throw new IOException("NBD read reply outside the requested range");
                    }
                    await _stream.ReadExactlyAsync(request.ReadBuffer.Slice((int)at, n)).ConfigureAwait(false);
                    return;
                }
            case NbdReplyType.OffsetHole:
                {
                    await _stream.ReadExactlyAsync(small.AsMemory(0, 12)).ConfigureAwait(false);
                    var at = (long)BinaryPrimitives.ReadUInt64BigEndian(small) - request.Offset;
                    var n = (int)ReadU32(small.AsSpan(8));
                    if (at < 0 || at + n > request.ReadBuffer.Length)
                    {
                        throw new IOException("NBD hole reply outside the requested range");
                    }
                    request.ReadBuffer.Span.Slice((int)at, n).Clear();
                    return;
                }
            case NbdReplyType.BlockStatus:
                {
                    var payload = new byte[length];
                    await _stream.ReadExactlyAsync(payload).ConfigureAwait(false);
                    if (request.Extents is { } extents)
                    {
                        for (var i = 4; i + 8 <= payload.Length && !extents.IsFull; i += 8)
                        {
                            extents.Add(ReadU32(payload.AsSpan(i)), ReadU32(payload.AsSpan(i + 4)) & (AllocationFlags.Hole | AllocationFlags.Zero));
                        }
                    }
                    return;
                }
            case NbdReplyType.Error or NbdReplyType.ErrorOffset:
                {
                    var payload = new byte[length];
                    await _stream.ReadExactlyAsync(payload).ConfigureAwait(false);
                    var errno = payload.Length >= 4 ? (int)ReadU32(payload) : 5;
                    var textLength = payload.Length >= 6 ? Math.Min(BinaryPrimitives.ReadUInt16BigEndian(payload.AsSpan(4)), payload.Length - 6) : 0;
                    request.Error ??= (errno, textLength > 0 ? Encoding.UTF8.GetString(payload, 6, textLength) : null);
                    return;
                }
            default:
                {
                    // NONE, or a chunk type this client did not ask for: skip its payload.
                    var skip = new byte[length];
                    await _stream.ReadExactlyAsync(skip).ConfigureAwait(false);
                    return;
                }
        }
    }
}
