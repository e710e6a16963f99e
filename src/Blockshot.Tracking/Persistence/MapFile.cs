using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Blockshot.Tracking.Persistence;

/// <summary>
/// The sidecar file: two header copies in the first 4 KiB, then the map, 4 KiB per page of 4096
/// blocks. Synchronous positional I/O; the committer calls it off the request path.
/// </summary>
internal sealed partial class MapFile : IDisposable
{
    public const int PagesStart = 4096;
    private readonly SafeFileHandle _handle;

    private MapFile(string path, SafeFileHandle handle)
    {
        Path = path;
        _handle = handle;
    }

    public string Path { get; }

    public static MapFile Open(string path) =>
        new(path, File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read));

    /// <summary>The newest header copy whose checksum holds, or null.</summary>
    public MapHeader? ReadHeader()
    {
        Span<byte> first = stackalloc byte[MapHeader.SlotSize];
        Span<byte> second = stackalloc byte[MapHeader.SlotSize];
        var a = RandomAccess.Read(_handle, first, 0) == MapHeader.SlotSize ? MapHeader.ReadFrom(first) : null;
        var b = RandomAccess.Read(_handle, second, MapHeader.SlotSize) == MapHeader.SlotSize ? MapHeader.ReadFrom(second) : null;
        return (a, b) switch
        {
            (null, _) => b,
            (_, null) => a,
            _ => a.Sequence >= b.Sequence ? a : b,
        };
    }

    /// <summary>Writes a header into the copy its sequence picks and makes it durable.</summary>
    public void WriteHeader(MapHeader header)
    {
        Span<byte> slot = stackalloc byte[MapHeader.SlotSize];
        header.WriteTo(slot);
        RandomAccess.Write(_handle, slot, (header.Sequence % 2) * MapHeader.SlotSize);
        Sync();
    }

    public void WritePage(long page, ReadOnlySpan<byte> data) => RandomAccess.Write(_handle, data[..ChangeMap.PageSize], PagesStart + (page * ChangeMap.PageSize));

    /// <summary>Reads a page; a page past the end of the file reads as zeros.</summary>
    public void ReadPage(long page, Span<byte> data)
    {
        var n = RandomAccess.Read(_handle, data[..ChangeMap.PageSize], PagesStart + (page * ChangeMap.PageSize));
        data[n..ChangeMap.PageSize].Clear();
    }

    /// <summary>Sets the length to the header plus <paramref name="pages"/> pages.</summary>
    public void SetPages(long pages) => RandomAccess.SetLength(_handle, PagesStart + (pages * ChangeMap.PageSize));

    public void Sync()
    {
        if (fdatasync(_handle) != 0)
        {
            throw new IOException($"fdatasync of {Path} failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    public void Dispose() => _handle.Dispose();

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fdatasync(SafeFileHandle fd);
}
