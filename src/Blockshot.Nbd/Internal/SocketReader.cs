using System.Net.Sockets;

namespace Blockshot.Nbd.Internal;

/// <summary>
/// Buffered reads from a socket: small headers are parsed from the buffer, large payloads are
/// received straight into the caller's memory. One reader per connection; not thread-safe.
/// </summary>
internal sealed class SocketReader(Socket socket, int bufferSize = 128 << 10)
{
    private readonly byte[] _buffer = GC.AllocateUninitializedArray<byte>(bufferSize, pinned: true);
    private int _start;
    private int _end;

    /// <summary>Bytes buffered and not yet consumed.</summary>
    public int Buffered => _end - _start;

    /// <summary>
    /// Makes at least <paramref name="count"/> bytes available. Returns false on a clean end of stream
    /// (nothing buffered); throws <see cref="EndOfStreamException"/> if the stream ends part way.
    /// </summary>
    public async ValueTask<bool> FillAsync(int count, CancellationToken cancellationToken = default)
    {
        if (_end - _start >= count)
        {
            return true;
        }
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }
        while (_end < count)
        {
            var n = await socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                if (_end == 0)
                {
                    return false;
                }
                throw new EndOfStreamException($"peer closed the connection {count - _end} byte(s) short of a complete message");
            }
            _end += n;
        }
        return true;
    }

    /// <summary>The next <paramref name="count"/> buffered bytes (after <see cref="FillAsync"/>).</summary>
    public ReadOnlySpan<byte> Peek(int count) => _buffer.AsSpan(_start, count);

    /// <summary>Consumes <paramref name="count"/> buffered bytes.</summary>
    public void Consume(int count) => _start += count;

    /// <summary>Reads exactly <paramref name="destination"/>.Length bytes.</summary>
    public async ValueTask ReadExactAsync(Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        var fromBuffer = Math.Min(destination.Length, _end - _start);
        _buffer.AsSpan(_start, fromBuffer).CopyTo(destination.Span);
        _start += fromBuffer;
        destination = destination[fromBuffer..];
        while (!destination.IsEmpty)
        {
            var n = await socket.ReceiveAsync(destination, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                throw new EndOfStreamException($"peer closed the connection {destination.Length} byte(s) short of a payload");
            }
            destination = destination[n..];
        }
    }

    /// <summary>Reads and discards <paramref name="count"/> bytes.</summary>
    public async ValueTask SkipAsync(long count, CancellationToken cancellationToken = default)
    {
        while (count > 0)
        {
            if (_end == _start)
            {
                _start = _end = 0;
                var n = await socket.ReceiveAsync(_buffer.AsMemory(), SocketFlags.None, cancellationToken).ConfigureAwait(false);
                if (n == 0)
                {
                    throw new EndOfStreamException($"peer closed the connection {count} byte(s) short of a payload");
                }
                _end = n;
            }
            var take = (int)Math.Min(count, _end - _start);
            _start += take;
            count -= take;
        }
    }
}
