using Microsoft.Win32.SafeHandles;

namespace Blockshot.Drivers;

/// <summary>
/// A read-only view of a range of a file's page cache (a shared mapping), for looking at data that is
/// then copied inside the kernel without reading it into a buffer: the image tools scan it for zero
/// blocks. Only ranges inside the file are mapped (a mapping read past the end of a file faults), so a
/// range that reaches past the end gets no view.
/// </summary>
public sealed unsafe partial class FileView : IDisposable
{
    private const int ProtRead = 1;
    private const int MapShared = 0x01;
    private const int MapPopulate = 0x8000;

    private readonly nint _base;
    private readonly nuint _mapped;
    private readonly int _skip;
    private int _disposed;

    private FileView(nint address, nuint mapped, int skip, int length)
    {
        _base = address;
        _mapped = mapped;
        _skip = skip;
        Length = length;
    }

    /// <summary>Byte count of the view.</summary>
    public int Length { get; }

    /// <summary>The bytes; valid until the view is disposed.</summary>
    public ReadOnlySpan<byte> Span
    {
        get
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            return new ReadOnlySpan<byte>((byte*)_base + _skip, Length);
        }
    }

    /// <summary>
    /// Maps <paramref name="length"/> bytes of <paramref name="file"/> from <paramref name="offset"/>, or
    /// returns null when the range is not wholly inside the file or the kernel refuses the mapping.
    /// </summary>
    public static FileView? TryMap(SafeFileHandle file, long offset, int length)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (offset < 0 || length <= 0 || offset + length > RandomAccess.GetLength(file))
        {
            return null;
        }
        var page = Environment.SystemPageSize;
        var skip = (int)(offset % page);
        var mapped = (nuint)(skip + length);
        var address = Mmap(0, mapped, ProtRead, MapShared | MapPopulate, file, offset - skip);
        return address == -1 ? null : new FileView(address, mapped, skip, length);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _ = Munmap(_base, _mapped);
        }
    }

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial nint Mmap(nint address, nuint length, int protection, int flags, SafeFileHandle fd, long offset);

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
    private static partial int Munmap(nint address, nuint length);
}
