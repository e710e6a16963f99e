using Blockshot.Core;
using Blockshot.Core.Platform;
using Blockshot.Daemon.Protocol;
using Blockshot.Drivers;
using Blockshot.Filters;
using Blockshot.Snapshots.Storage;

namespace Blockshot.Daemon.SnapshotSets;

/// <summary>
/// Where a device's snapshots keep old data, as the user writes it: <c>memory</c>, <c>file:PATH</c>,
/// <c>dir:PATH</c> (an unnamed O_TMPFILE there), <c>multi:P1,P2,...</c> (files or block devices used in
/// order) or <c>tiered:SIZE,INNER</c> (RAM in front of another kind).
/// </summary>
internal sealed record StorageSpec(string Kind, IReadOnlyList<string> Paths, long RamBytes = 0, StorageSpec? Inner = null)
{
    /// <summary>The limit of a memory store when none is given.</summary>
    public const long DefaultMemoryLimit = 1L << 30;

    /// <summary>The spec as text (paths made absolute).</summary>
    public string Text => Kind switch
    {
        "memory" => "memory",
        "tiered" => $"tiered:{RamBytes},{Inner!.Text}",
        "multi" => "multi:" + string.Join(',', Paths),
        _ => $"{Kind}:{Paths[0]}",
    };

    /// <summary>True when the store survives a restart (a single file).</summary>
    public bool CanPersist => Kind == "file";

    /// <summary>Every file, directory or device the storage uses, this one's and the inner one's.</summary>
    public IEnumerable<string> AllPaths => Inner is null ? Paths : Paths.Concat(Inner.AllPaths);

    /// <summary>Parses the user's text; throws invalid-params with what was expected.</summary>
    public static StorageSpec Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        var kind = colon < 0 ? text : text[..colon];
        var rest = colon < 0 ? "" : text[(colon + 1)..];
        switch (kind)
        {
            case "memory" when rest.Length == 0:
                return new StorageSpec("memory", []);
            case "file" or "dir" when rest.Length > 0 && !rest.Contains(',', StringComparison.Ordinal):
                return new StorageSpec(kind, [Path.GetFullPath(rest)]);
            case "multi" when rest.Length > 0:
                var paths = rest.Split(',', StringSplitOptions.TrimEntries);
                if (paths.Any(p => p.Length == 0))
                {
                    throw Bad(text, "multi: needs a comma-separated list of files or block devices");
                }
                return new StorageSpec("multi", [.. paths.Select(p => Path.GetFullPath(p))]);
            case "tiered":
                var comma = rest.IndexOf(',', StringComparison.Ordinal);
                if (comma < 0 || !Quantity.TryParseSize(rest[..comma], out var ram) || ram <= 0)
                {
                    throw Bad(text, "tiered: is tiered:SIZE,INNER, e.g. tiered:256M,file:/var/tmp/diff");
                }
                var inner = Parse(rest[(comma + 1)..]);
                if (inner.Kind is "tiered" or "memory")
                {
                    throw Bad(text, "the store behind a RAM tier must be file:, dir: or multi:");
                }
                return new StorageSpec("tiered", [], ram, inner);
            default:
                throw Bad(text, "expected memory, file:PATH, dir:PATH, multi:P1,P2,... or tiered:SIZE,INNER");
        }
    }

    /// <summary>
    /// Refuses storage on a device of the set: the same file or block device, a file system that lives on
    /// one of them, or a directory holding one of the set's image files is fine, but not the image itself.
    /// </summary>
    public void CheckNotOn(IReadOnlyList<(string Device, string File)> set)
    {
        foreach (var path in AllPaths)
        {
            var probe = File.Exists(path) || Directory.Exists(path) ? path : Path.GetDirectoryName(path) ?? "/";
            FileStatus.TryGet(probe, out var storage);
            foreach (var (device, file) in set)
            {
                if (!FileStatus.TryGet(file, out var image))
                {
                    continue;
                }
                var same = !storage.IsBlockDevice && !image.IsBlockDevice && path == probe && storage.Device == image.Device && storage.Inode == image.Inode;
                var sameBlock = storage.IsBlockDevice && image.IsBlockDevice && storage.SpecialDevice == image.SpecialDevice;
                var onIt = image.IsBlockDevice && !storage.IsBlockDevice && storage.Device == image.SpecialDevice;
                if (same || sameBlock || onIt)
                {
                    throw new ControlException(ControlErrorCodes.InvalidParams,
                        $"difference storage {path} is on device {device} ({file}), which is in the same snapshot set; its writes would need protecting by the snapshot they serve. Put the storage elsewhere");
                }
            }
        }
    }

    /// <summary>
    /// Creates the store (new files are created; existing block devices are used as they are). File and
    /// directory stores go through the page cache, unless they sit behind a RAM tier (<paramref name="cached"/>
    /// false), which is their cache already.
    /// </summary>
    public DiffStore Open(int chunkSize, DiffStoreOptions options, List<string> created, bool cached = true) => Kind switch
    {
        "memory" => MemoryStore(chunkSize, options.LimitBytes == long.MaxValue ? options with { LimitBytes = DefaultMemoryLimit } : options),
        "file" => new NodeDiffStore(OpenMember(Paths[0], created, cached), chunkSize, options),
        "dir" => new NodeDiffStore(OpenTemporary(Paths[0], cached), chunkSize, options),
        "multi" => new MultiDiffStore([.. Paths.Select(p => new NodeDiffStore(OpenMember(p, created, cached), chunkSize, options))]),
        "tiered" => new TieredDiffStore(Inner!.Open(chunkSize, options, created, cached: false), RamBytes),
        _ => throw new InvalidOperationException(Kind),
    };

    // A sparse memory node as large as the limit: pages are allocated as chunks land, and the node is
    // never resized under concurrent copies (a memory node resizes only with its requests drained).
    private static NodeDiffStore MemoryStore(int chunkSize, DiffStoreOptions options) =>
        new(new MemoryNode(options.LimitBytes - (options.LimitBytes % chunkSize)), chunkSize, options);

    /// <summary>Opens the existing file of a persistent store after a restart.</summary>
    public DiffStore Reopen(int chunkSize, DiffStoreOptions options) =>
        new NodeDiffStore(Open(Paths[0], create: false, cached: true), chunkSize, options);

    private static BlockNode OpenMember(string path, List<string> created, bool cached)
    {
        if (FileStatus.TryGet(path, out var status))
        {
            if (status.IsBlockDevice)
            {
                return Open(path, create: false, cached);
            }
            throw new ControlException(ControlErrorCodes.AlreadyExists,
                $"{path} exists; difference storage files are created by the snapshot (give a new path, or a block device)");
        }
        var node = Open(path, create: true, cached);
        created.Add(path);
        return node;
    }

    // Difference storage goes through the page cache, as a fleecing target does: the copies are then
    // still in memory when a backup reads the snapshot, which on a disk that reads 600-850 MB/s is what
    // makes the snapshot's read fast (docs/benchmarks.md, "The snapshot read row"). Its writes land in new
    // page-cache memory and may wait for it, so they never run on an NBD connection's reader thread
    // (OffloadWrites): the device's writer waits for the copy, not every request behind it. Behind a RAM
    // tier the store bypasses the page cache (O_DIRECT) where the file system allows it: the tier is its
    // cache, and a second copy in the page cache would only take memory from the devices' own data.
    private static RawFileNode Open(string path, bool create, bool cached)
    {
        try
        {
            if (create)
            {
                using (new FileStream(path, FileMode.CreateNew, FileAccess.Write))
                {
                }
            }
            if (cached)
            {
                return RawFileNode.Open(path, new RawFileOptions { Locking = false, OffloadWrites = true });
            }
            try
            {
                return RawFileNode.Open(path, new RawFileOptions { Locking = false, Direct = true });
            }
            catch (ImageOpenException e) when (e.Reason == ImageOpenError.DirectUnsupported)
            {
                return RawFileNode.Open(path, new RawFileOptions { Locking = false });
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ControlException(ControlErrorCodes.IoError, $"cannot open difference storage {path}: {e.Message}", e);
        }
    }

    private static RawFileNode OpenTemporary(string directory, bool cached)
    {
        try
        {
            return RawFileNode.CreateTemporary(directory, direct: !cached, offloadWrites: cached);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ControlException(ControlErrorCodes.IoError, $"cannot create difference storage in {directory}: {e.Message}", e);
        }
    }

    private static ControlException Bad(string text, string expected) =>
        new(ControlErrorCodes.InvalidParams, $"storage '{text}' is not valid: {expected}");
}
