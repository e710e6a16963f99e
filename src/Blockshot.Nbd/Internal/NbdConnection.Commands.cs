using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;
using Blockshot.Core;
using Blockshot.Nbd.Protocol;

namespace Blockshot.Nbd.Internal;

/// <summary>Running requests on the export's slot and building their replies.</summary>
internal sealed partial class NbdConnection
{
    // Read data fills a pooled buffer of exactly its length (page-aligned, so O_DIRECT needs no
    // bounce); the reply header goes in the lane's small buffer, and the sender coalesces both.
    private const int OffsetDataHeader = NbdMagic.ChunkHeaderSize + 8;
    private const int HoleChunkSize = NbdMagic.ChunkHeaderSize + 12;
    private const int HoleBlock = 4096;
    private const int MinHoleRun = 64 << 10;

    /// <summary>Runs the lane's request, queues its reply and waits until it is written.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask ServeAsync(Lane lane)
    {
        var request = lane.Request;
        lane.ClearReply();
        var error = lane.PresetError;
        var message = lane.PresetMessage;
        if (error == 0)
        {
            try
            {
                await RunAsync(lane, request).ConfigureAwait(false);
            }
            catch (BlockException e)
            {
                error = NbdErrors.From(e.Error, (request.Flags & NbdCommandFlags.FastZero) != 0);
                message = e.Message;
                NbdLog.RequestFailed(_logger, Id, request.Command.ToString(), request.Offset, request.Length, e.Message);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                error = NbdErrors.Io;
                message = e.Message;
                NbdLog.RequestCrashed(_logger, Id, request.Command.ToString(), request.Offset, request.Length, e);
            }
        }
        if (error != 0)
        {
            lane.ClearReply();
            AddErrorReply(lane, request, error, message);
        }
        await SendAsync(lane).ConfigureAwait(false);
    }

    private async ValueTask RunAsync(Lane lane, NbdRequest request)
    {
        var slot = Export!.Slot;
        var offset = (long)request.Offset;
        var fua = (request.Flags & NbdCommandFlags.Fua) != 0 ? IoFlags.Fua : IoFlags.None;
        switch (request.Command)
        {
            case NbdCommand.Read:
                await ReadAsync(lane, slot, request).ConfigureAwait(false);
                return;
            case NbdCommand.BlockStatus:
                await BlockStatusAsync(lane, slot, request).ConfigureAwait(false);
                return;
            case NbdCommand.Write:
                await slot.WriteAsync(offset, lane.Buffer is { } payload ? payload.Memory : ReadOnlyMemory<byte>.Empty, fua).ConfigureAwait(false);
                break;
            case NbdCommand.WriteZeroes:
                var zeroFlags = fua;
                if ((request.Flags & NbdCommandFlags.NoHole) == 0)
                {
                    zeroFlags |= IoFlags.MayTrim;
                }
                if ((request.Flags & NbdCommandFlags.FastZero) != 0)
                {
                    zeroFlags |= IoFlags.FastZero;
                }
                await slot.WriteZeroesAsync(offset, request.Length, zeroFlags).ConfigureAwait(false);
                break;
            case NbdCommand.Trim:
                await slot.TrimAsync(offset, request.Length, fua).ConfigureAwait(false);
                break;
            case NbdCommand.Flush:
                await slot.FlushAsync().ConfigureAwait(false);
                break;
            case NbdCommand.Cache:
                await slot.CacheAsync(offset, request.Length).ConfigureAwait(false);
                break;
            default:
                throw new BlockException(BlockError.Invalid, $"unknown command {request.Command}");
        }
        NbdWire.WriteSimpleReply(lane.Small, 0, request.Cookie);
        lane.AddSmall(0, NbdMagic.SimpleReplySize);
    }

    private async ValueTask ReadAsync(Lane lane, Slot slot, NbdRequest request)
    {
        var length = (int)request.Length;
        if (length == 0)
        {
            if (_structured)
            {
                NbdWire.WriteChunkHeader(lane.Small, done: true, NbdReplyType.None, request.Cookie, 0);
                lane.AddSmall(0, NbdMagic.ChunkHeaderSize);
            }
            else
            {
                NbdWire.WriteSimpleReply(lane.Small, 0, request.Cookie);
                lane.AddSmall(0, NbdMagic.SimpleReplySize);
            }
            return;
        }
        var zeroCopyMin = _options.ZeroCopyReadMinLength;
        if (zeroCopyMin > 0 && length >= zeroCopyMin && Export!.TransmittingConnections >= _options.ZeroCopyMinConnections
            && slot.TryMapCachedRead((long)request.Offset, length, out var cached))
        {
            // A range with a hole is never mapped, so one data chunk is the whole reply. Counted here, before
            // the client can have the data: counted after the send, a client could see it before the count.
            Interlocked.Increment(ref _server.ZeroCopyReplyCount);
            AddHeader(lane, request, length);
            lane.AddFile(cached);
            return;
        }
        var buffer = _pool.Rent(length);
        lane.Buffer = buffer;
        await slot.ReadAsync((long)request.Offset, buffer.Memory).ConfigureAwait(false);
        if (!_structured || (request.Flags & NbdCommandFlags.DontFragment) != 0 || length < _options.HoleScanMinLength
            || !AddSparseRead(lane, buffer.Span, request))
        {
            AddHeader(lane, request, length);
            lane.AddBuffer(0, length);
        }
    }

    // The reply header of a read answered with one piece of data: simple, or one data chunk.
    private void AddHeader(Lane lane, NbdRequest request, int length)
    {
        if (_structured)
        {
            WriteDataChunkHeader(lane.Small, done: true, request.Cookie, request.Offset, length);
            lane.AddSmall(0, OffsetDataHeader);
        }
        else
        {
            NbdWire.WriteSimpleReply(lane.Small, 0, request.Cookie);
            lane.AddSmall(0, NbdMagic.SimpleReplySize);
        }
    }

    private static void WriteDataChunkHeader(Span<byte> destination, bool done, ulong cookie, ulong offset, int length)
    {
        NbdWire.WriteChunkHeader(destination, done, NbdReplyType.OffsetData, cookie, (uint)(8 + length));
        BinaryPrimitives.WriteUInt64BigEndian(destination[NbdMagic.ChunkHeaderSize..], offset);
    }

    /// <summary>
    /// Sends zero runs of at least <see cref="MinHoleRun"/> as hole chunks. Headers are written in
    /// place where the data allows: a data chunk after a hole takes the last bytes of that hole, a
    /// hole chunk the first bytes of its own run; only a leading data chunk's header goes in the
    /// lane's small buffer. Returns false when there is no hole worth sending.
    /// </summary>
    private static bool AddSparseRead(Lane lane, Span<byte> data, NbdRequest request)
    {
        var length = (int)request.Length;
        Span<int> runs = stackalloc int[64];
        var count = 0;
        var pos = 0;
        while (pos < length && count + 2 <= runs.Length)
        {
            var holeStart = FindZeroRun(data, pos);
            if (holeStart < 0)
            {
                break;
            }
            var holeEnd = holeStart;
            while (holeEnd < length && IsZeroBlock(data, holeEnd))
            {
                holeEnd = Math.Min(holeEnd + HoleBlock, length);
            }
            if (holeEnd - holeStart >= MinHoleRun)
            {
                runs[count++] = holeStart;
                runs[count++] = holeEnd;
            }
            pos = holeEnd;
        }
        if (count == 0)
        {
            return false;
        }

        var cursor = 0;
        for (var i = 0; i <= count; i += 2)
        {
            var holeStart = i < count ? runs[i] : length;
            if (holeStart > cursor)
            {
                var done = i == count;
                if (cursor == 0)
                {
                    WriteDataChunkHeader(lane.Small, done, request.Cookie, request.Offset, holeStart);
                    lane.AddSmall(0, OffsetDataHeader);
                    lane.AddBuffer(0, holeStart);
                }
                else
                {
                    WriteDataChunkHeader(data[(cursor - OffsetDataHeader)..], done, request.Cookie, request.Offset + (ulong)cursor, holeStart - cursor);
                    lane.AddBuffer(cursor - OffsetDataHeader, OffsetDataHeader + holeStart - cursor);
                }
            }
            if (i < count)
            {
                var holeEnd = runs[i + 1];
                var done = i + 2 == count && holeEnd == length;
                var at = holeStart;
                NbdWire.WriteChunkHeader(data[at..], done, NbdReplyType.OffsetHole, request.Cookie, 12);
                BinaryPrimitives.WriteUInt64BigEndian(data[(at + NbdMagic.ChunkHeaderSize)..], request.Offset + (ulong)holeStart);
                BinaryPrimitives.WriteUInt32BigEndian(data[(at + NbdMagic.ChunkHeaderSize + 8)..], (uint)(holeEnd - holeStart));
                lane.AddBuffer(at, HoleChunkSize);
                cursor = holeEnd;
            }
        }
        return true;
    }

    // First block-aligned (relative to the read) zero block at or after pos, or -1.
    private static int FindZeroRun(ReadOnlySpan<byte> data, int pos)
    {
        for (; pos < data.Length; pos += HoleBlock)
        {
            if (IsZeroBlock(data, pos))
            {
                return pos;
            }
        }
        return -1;
    }

    private static bool IsZeroBlock(ReadOnlySpan<byte> data, int pos) =>
        data.Slice(pos, Math.Min(HoleBlock, data.Length - pos)).IndexOfAnyExcept((byte)0) < 0;

    private async ValueTask BlockStatusAsync(Lane lane, Slot slot, NbdRequest request)
    {
        var reqOne = (request.Flags & NbdCommandFlags.ReqOne) != 0;
        var offset = (long)request.Offset;
        var selected = Selected;
        var total = 0;
        for (var i = 0; i < selected.Count; i++)
        {
            var list = lane.ExtentsFor(i);
            list.Reset(offset, request.Length, reqOne ? 1 : NbdLimits.MaxExtentsPerReply);
            var name = selected[i].Name;
            while (!list.IsFull)
            {
                var before = list.End;
                if (name == MetaContextCatalog.BaseAllocation)
                {
                    await slot.GetExtentsAsync(list.End, list.Remaining, list).ConfigureAwait(false);
                }
                else
                {
                    await slot.QueryStatusAsync(name, list.End, list.Remaining, list).ConfigureAwait(false);
                }
                if (list.End == before)
                {
                    break;
                }
            }
            if (list.Count == 0)
            {
                throw new BlockException(BlockError.Io, $"context {name} returned no extents at {offset}");
            }
            total += NbdMagic.ChunkHeaderSize + 4 + (8 * list.Count);
        }

        var buffer = _pool.Rent(total);
        lane.Buffer = buffer;
        var span = buffer.Span;
        var at = 0;
        for (var i = 0; i < selected.Count; i++)
        {
            var list = lane.Extents[i];
            var payload = 4 + (8 * list.Count);
            NbdWire.WriteChunkHeader(span[at..], i == selected.Count - 1, NbdReplyType.BlockStatus, request.Cookie, (uint)payload);
            at += NbdMagic.ChunkHeaderSize;
            BinaryPrimitives.WriteUInt32BigEndian(span[at..], selected[i].Id);
            at += 4;
            foreach (var extent in list.Items)
            {
                BinaryPrimitives.WriteUInt32BigEndian(span[at..], (uint)extent.Length);
                BinaryPrimitives.WriteUInt32BigEndian(span[(at + 4)..], extent.Flags);
                at += 8;
            }
        }
        lane.AddBuffer(0, total);
    }

    private void AddErrorReply(Lane lane, NbdRequest request, uint error, string? message)
    {
        if (_structured && request.Command is NbdCommand.Read or NbdCommand.BlockStatus)
        {
            var small = lane.Small.AsSpan();
            var text = message ?? "";
            var room = small.Length - NbdMagic.ChunkHeaderSize - 6;
            var written = Encoding.UTF8.GetBytes(text.AsSpan(0, Math.Min(text.Length, room / 3)), small[(NbdMagic.ChunkHeaderSize + 6)..]);
            NbdWire.WriteChunkHeader(small, done: true, NbdReplyType.Error, request.Cookie, (uint)(6 + written));
            BinaryPrimitives.WriteUInt32BigEndian(small[NbdMagic.ChunkHeaderSize..], error);
            BinaryPrimitives.WriteUInt16BigEndian(small[(NbdMagic.ChunkHeaderSize + 4)..], (ushort)written);
            lane.AddSmall(0, NbdMagic.ChunkHeaderSize + 6 + written);
        }
        else
        {
            NbdWire.WriteSimpleReply(lane.Small, error, request.Cookie);
            lane.AddSmall(0, NbdMagic.SimpleReplySize);
        }
    }
}
