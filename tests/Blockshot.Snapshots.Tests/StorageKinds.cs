using System.Runtime.InteropServices;
using Blockshot.Drivers;
using Blockshot.Snapshots.Storage;

namespace Blockshot.Snapshots.Tests;

/// <summary>
/// Builds each kind of difference storage the way the daemon's storage specs do: memory (a sparse
/// node as large as the limit), file (a file that grows), directory (an unnamed O_TMPFILE file), multi
/// (two files used in order) and tiered (RAM in front of a file).
/// </summary>
public static partial class StorageKinds
{
    public const int Chunk = 64 << 10;

    public static readonly TheoryData<string> All = new() { "memory", "file", "dir", "multi", "tiered" };

    /// <summary>A store of <paramref name="kind"/> in <paramref name="dir"/> sized by <paramref name="options"/>.</summary>
    public static DiffStore Create(string kind, TempDir dir, DiffStoreOptions options) => kind switch
    {
        "memory" => new NodeDiffStore(new MemoryNode(options.LimitBytes), Chunk, options),
        "file" => new NodeDiffStore(NewFile(dir.File("store.raw")), Chunk, options),
        "dir" => new NodeDiffStore(OpenTemporary(dir.Path), Chunk, options),
        "multi" => new MultiDiffStore(
        [
            new NodeDiffStore(NewFile(dir.File("store-a.raw")), Chunk, Half(options)),
            new NodeDiffStore(NewFile(dir.File("store-b.raw")), Chunk, Half(options)),
        ]),
        "tiered" => new TieredDiffStore(new NodeDiffStore(NewFile(dir.File("store.raw")), Chunk, options), 4L * Chunk),
        _ => throw new ArgumentException(kind, nameof(kind)),
    };

    private static DiffStoreOptions Half(DiffStoreOptions o) => o with { LimitBytes = o.LimitBytes / 2 };

    public static RawFileNode NewFile(string path)
    {
        File.WriteAllBytes(path, []);
        return RawFileNode.Open(path, new RawFileOptions { Locking = false });
    }

    /// <summary>
    /// An unnamed file in <paramref name="directory"/> (O_TMPFILE), opened through /proc/self/fd so the
    /// raw driver can take it; nothing is left in the directory and the space goes with the last descriptor.
    /// </summary>
    public static RawFileNode OpenTemporary(string directory)
    {
        var tmpFile = 0x400000 | (RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Ppc64le ? 0x4000 : 0x10000);
        const int ReadWrite = 2;
        var fd = Open(directory, tmpFile | ReadWrite, 0x180);
        if (fd < 0)
        {
            throw new IOException($"O_TMPFILE in {directory} failed: errno {Marshal.GetLastPInvokeError()}");
        }
        try
        {
            return RawFileNode.Open($"/proc/self/fd/{fd}", new RawFileOptions { Locking = false });
        }
        finally
        {
            _ = Close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
