using System.Net.Sockets;

namespace Blockshot.Nbd.Internal;

/// <summary>
/// Buffered blocking reads from a socket, for the connection's own thread: small headers are parsed
/// from the buffer, large payloads are received straight into the caller's memory. Before each receive
/// (which may wait for the client) it runs <see cref="BeforeReceive"/>, so work owed to the client goes
/// out first. One reader per connection; not thread-safe.
/// </summary>
internal sealed class SocketReader(Socket socket, int bufferSize = 128 << 10)
{
    private readonly byte[] _buffer = GC.AllocateUninitializedArray<byte>(bufferSize, pinned: true);
    private int _start;
    private int _end;

    /// <summary>Bytes buffered and not yet consumed.</summary>
    public int Buffered => _end - _start;

    /// <summary>Runs before every receive; the connection flushes the replies its reader owes.</summary>
    public Action? BeforeReceive { get; set; }

    /// <summary>
    /// Makes at least <paramref name="count"/> bytes available. Returns false on a clean end of stream
    /// (nothing buffered); throws <see cref="EndOfStreamException"/> if the stream ends part way.
    /// </summary>
    public bool Fill(int count)
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
            var n = Receive(_buffer.AsSpan(_end));
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

    /// <summary>The next <paramref name="count"/> buffered bytes (after <see cref="Fill"/>).</summary>
    public ReadOnlySpan<byte> Peek(int count) => _buffer.AsSpan(_start, count);

    /// <summary>Consumes <paramref name="count"/> buffered bytes.</summary>
    public void Consume(int count) => _start += count;

    /// <summary>Reads exactly <paramref name="destination"/>.Length bytes.</summary>
    public void ReadExact(Span<byte> destination)
    {
        var fromBuffer = Math.Min(destination.Length, _end - _start);
        _buffer.AsSpan(_start, fromBuffer).CopyTo(destination);
        _start += fromBuffer;
        destination = destination[fromBuffer..];
        while (!destination.IsEmpty)
        {
            var n = Receive(destination);
            if (n == 0)
            {
                throw new EndOfStreamException($"peer closed the connection {destination.Length} byte(s) short of a payload");
            }
            destination = destination[n..];
        }
    }

    /// <summary>Reads and discards <paramref name="count"/> bytes.</summary>
    public void Skip(long count)
    {
        while (count > 0)
        {
            if (_end == _start)
            {
                _start = _end = 0;
                var n = Receive(_buffer);
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

    private int Receive(Span<byte> into)
    {
        BeforeReceive?.Invoke();
        return socket.Receive(into, SocketFlags.None);
    }
}
