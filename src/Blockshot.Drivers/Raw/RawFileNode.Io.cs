using System.Buffers;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using Blockshot.Core;
using Blockshot.Drivers.Raw;

namespace Blockshot.Drivers;

// Reads and writes: the page cache inline when it can answer at once (RawFileNode.Nowait.cs),
// otherwise pread/pwrite on the driver's blocking-I/O threads (BlockingIoThreads.cs); FUA through pwritev2(RWF_DSYNC).
public sealed partial class RawFileNode
{
    /// <inheritdoc/>
    public override ValueTask ReadAsync(long offset, Memory<byte> buffer)
    {
        Debug.Assert(offset >= 0 && offset + buffer.Length <= Size, "requests are validated at the graph entry");
        if (_direct)
        {
            return ReadDirectAsync(offset, buffer);
        }
        var n = TryReadNowait(offset, buffer.Span);
        return n == buffer.Length ? default : ReadExactAsync(offset + n, buffer[n..]);
    }

    /// <inheritdoc/>
    public override ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, IoFlags flags)
    {
        if (_readOnly)
        {
            return ReadOnlyFailure("write");
        }
        Debug.Assert(offset >= 0 && offset + data.Length <= Size, "requests are validated at the graph entry");
        var fua = (flags & IoFlags.Fua) != 0;
        if (_direct)
        {
            return WriteDirectAsync(offset, data, fua);
        }
        if (!fua)
        {
            var n = TryWriteNowait(offset, data.Span);
            if (n == data.Length)
            {
                return default;
            }
            offset += n;
            data = data[n..];
        }
        return WriteAtAsync(offset, data, fua);
    }

    /// <summary>
    /// Reads exactly <paramref name="buffer"/>.Length bytes, looping over short reads. Bytes past the end
    /// of the file (it shrank under us, or an O_DIRECT read of the last partial block) read as zeros.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReadExactAsync(long offset, Memory<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            long n;
            using (var pin = buffer.Pin())
            {
                n = await StartRead(pin, buffer.Length, offset).ConfigureAwait(false);
            }
            if (n < 0)
            {
                ThrowErrno(n, "read", offset, buffer.Length);
            }
            if (n == 0 || (_direct && !IsAligned(n)))
            {
                // End of file: an unaligned O_DIRECT count can only mean that too.
                buffer[(int)n..].Span.Clear();
                return;
            }
            buffer = buffer[(int)n..];
            offset += n;
        }
    }

    /// <summary>Writes all of <paramref name="data"/>; with <paramref name="fua"/> it is durable on return.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteAtAsync(long offset, ReadOnlyMemory<byte> data, bool fua)
    {
        if (fua && !_dsyncWriteRefused)
        {
            long written;
            using (var pin = data.Pin())
            {
                written = await StartDsyncWrite(pin, data.Length, offset).ConfigureAwait(false);
            }
            if (written >= 0)
            {
                return;
            }
            if (written != -Libc.ENOSYS && written != -Libc.EOPNOTSUPP)
            {
                ThrowErrno(written, "write", offset, data.Length);
            }
            _dsyncWriteRefused = true;
        }
        long done;
        using (var pin = data.Pin())
        {
            done = await StartWrite(pin, data.Length, offset).ConfigureAwait(false);
        }
        if (done < 0)
        {
            ThrowErrno(done, "write", offset, data.Length);
        }
        if (fua)
        {
            await SyncAsync("sync after write", offset, data.Length).ConfigureAwait(false);
        }
    }

    /// <summary>fdatasync, reporting failure against the request that asked for it.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask SyncAsync(string operation, long offset, long length)
    {
        var r = await SyscallOp.DataSync(_handle).ConfigureAwait(false);
        if (r < 0)
        {
            ThrowErrno(r, operation, offset, length);
        }
    }

    private unsafe ValueTask<long> StartRead(MemoryHandle pin, int length, long offset) =>
        SyscallOp.Read(_handle, pin.Pointer, length, offset);

    private unsafe ValueTask<long> StartWrite(MemoryHandle pin, int length, long offset) =>
        SyscallOp.Write(_handle, pin.Pointer, length, offset);

    private unsafe ValueTask<long> StartDsyncWrite(MemoryHandle pin, int length, long offset) =>
        SyscallOp.WriteDsync(_handle, pin.Pointer, length, offset);

    private bool IsAligned(long value) => (value & (_alignment - 1)) == 0;
}
