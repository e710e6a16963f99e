using System.Buffers;
using System.Runtime.InteropServices;

namespace Blockshot.Core.Buffers;

/// <summary>
/// A page-aligned native buffer rented from a <see cref="BufferPool"/>. Disposing it returns it to the
/// pool; using it after that, or returning it twice, is a bug and throws. Buffers of
/// <see cref="MappedFrom"/> bytes and more are mapped from the system directly, so freeing one gives its
/// memory back at once (the C heap keeps freed blocks of that size: after a snapshot's 512 MiB RAM tier was
/// released, the daemon stayed 600 MiB larger).
/// </summary>
public sealed unsafe partial class PooledBuffer : MemoryManager<byte>
{
    /// <summary>The capacity from which buffers are mapped instead of taken from the C heap.</summary>
    public const int MappedFrom = 64 << 10;

    private readonly BufferPool _pool;
    private byte* _pointer;
    private int _length;
    private int _rented;

    internal PooledBuffer(BufferPool pool, int capacity)
    {
        _pool = pool;
        Capacity = capacity;
        if (capacity >= MappedFrom)
        {
            var p = MapAnonymous(0, (nuint)capacity, ProtRead | ProtWrite, MapPrivate | MapAnonymousFlag, -1, 0);
            if (p == -1)
            {
                throw new OutOfMemoryException($"cannot map a {capacity}-byte buffer (errno {Marshal.GetLastPInvokeError()})");
            }
            _pointer = (byte*)p;
        }
        else
        {
            _pointer = (byte*)NativeMemory.AlignedAlloc((nuint)capacity, BufferPool.PageSize);
        }
    }

    /// <summary>Bytes available to the renter.</summary>
    public int Length => _length;

    /// <summary>Bytes allocated (a power of two, at least <see cref="Length"/>).</summary>
    public int Capacity { get; }

    /// <summary>The usable bytes as a span.</summary>
    public Span<byte> Span => GetSpan();

    /// <summary>The usable bytes as memory.</summary>
    public new Memory<byte> Memory => CreateMemory(_length);

    /// <summary>Changes the usable length, up to <see cref="Capacity"/>.</summary>
    public void SetLength(int length)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan((uint)length, (uint)Capacity, nameof(length));
        _length = length;
    }

    /// <inheritdoc/>
    public override Span<byte> GetSpan()
    {
        if (Volatile.Read(ref _rented) == 0)
        {
            throw new ObjectDisposedException(nameof(PooledBuffer), "buffer used after it was returned to its pool");
        }
        return new Span<byte>(_pointer, _length);
    }

    /// <inheritdoc/>
    public override MemoryHandle Pin(int elementIndex = 0)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan((uint)elementIndex, (uint)Capacity, nameof(elementIndex));
        return new MemoryHandle(_pointer + elementIndex);
    }

    /// <inheritdoc/>
    public override void Unpin()
    {
    }

    internal void OnRent(int length)
    {
        _length = length;
        Volatile.Write(ref _rented, 1);
    }

    /// <summary>Returns the buffer to its pool.</summary>
    protected override void Dispose(bool disposing)
    {
        if (Interlocked.Exchange(ref _rented, 0) == 0)
        {
            throw new InvalidOperationException("buffer returned to its pool twice");
        }
        _pool.Return(this);
    }

    internal void FreeNative()
    {
        var p = _pointer;
        _pointer = null;
        if (p is null)
        {
            return;
        }
        if (Capacity >= MappedFrom)
        {
            // It cannot fail for a mapping this object made; if it did, the memory is only leaked.
            _ = Unmap((nint)p, (nuint)Capacity);
        }
        else
        {
            NativeMemory.AlignedFree(p);
        }
    }

    private const int ProtRead = 1;
    private const int ProtWrite = 2;
    private const int MapPrivate = 0x02;
    private const int MapAnonymousFlag = 0x20;

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial nint MapAnonymous(nint address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
    private static partial int Unmap(nint address, nuint length);
}
