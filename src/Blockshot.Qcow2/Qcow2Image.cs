using System.Numerics;
using Blockshot.Core;
using Blockshot.Core.Extents;

namespace Blockshot.Qcow2;

public static partial class Qcow2Image
{
    /// <summary>Opens an image as a block node (see <see cref="Qcow2Node.OpenAsync"/>).</summary>
    public static ValueTask<Qcow2Node> OpenAsync(string path, Qcow2OpenOptions? options = null) => Qcow2Node.OpenAsync(path, options);

    /// <summary>The image's information as the info command reports it (read-only; the backing chain is not opened).</summary>
    public static async ValueTask<Qcow2ImageInfo> InfoAsync(string path)
    {
        await using var node = await Qcow2Node.OpenAsync(path, new Qcow2OpenOptions { ReadOnly = true, OpenBacking = false }).ConfigureAwait(false);
        return node.GetInfo();
    }

    /// <summary>Information for the image and every qcow2 image of its backing chain, top first.</summary>
    public static async ValueTask<IReadOnlyList<Qcow2ImageInfo>> InfoChainAsync(string path)
    {
        var list = new List<Qcow2ImageInfo>();
        await using var node = await Qcow2Node.OpenAsync(path, new Qcow2OpenOptions { ReadOnly = true }).ConfigureAwait(false);
        BlockNode? current = node;
        while (current is Qcow2Node q)
        {
            list.Add(q.GetInfo());
            current = q.Backing;
        }
        return list;
    }

    /// <summary>Maps the whole disk through the backing chain (see <see cref="Qcow2Node.MapAsync"/>).</summary>
    public static async ValueTask<IReadOnlyList<Qcow2MapEntry>> MapAsync(string path)
    {
        await using var node = await Qcow2Node.OpenAsync(path, new Qcow2OpenOptions { ReadOnly = true }).ConfigureAwait(false);
        return await node.MapAsync().ConfigureAwait(false);
    }

    /// <summary>Lists internal snapshots.</summary>
    public static async ValueTask<IReadOnlyList<Qcow2SnapshotInfo>> ListSnapshotsAsync(string path)
    {
        await using var node = await Qcow2Node.OpenAsync(path, new Qcow2OpenOptions { ReadOnly = true, OpenBacking = false }).ConfigureAwait(false);
        return node.Snapshots;
    }

    /// <summary>Takes an internal snapshot of a closed image.</summary>
    public static ValueTask<Qcow2SnapshotInfo> CreateSnapshotAsync(string path, string name) =>
        WithImageAsync(path, node => node.CreateSnapshotAsync(name));

    /// <summary>Reverts a closed image to an internal snapshot.</summary>
    public static ValueTask ApplySnapshotAsync(string path, string idOrName) =>
        WithImageAsync(path, node => node.ApplySnapshotAsync(idOrName));

    /// <summary>Deletes an internal snapshot of a closed image.</summary>
    public static ValueTask DeleteSnapshotAsync(string path, string idOrName) =>
        WithImageAsync(path, node => node.DeleteSnapshotAsync(idOrName));

    /// <summary>Lists persistent bitmaps.</summary>
    public static async ValueTask<IReadOnlyList<Qcow2BitmapInfo>> ListBitmapsAsync(string path)
    {
        await using var node = await Qcow2Node.OpenAsync(path, new Qcow2OpenOptions { ReadOnly = true, OpenBacking = false }).ConfigureAwait(false);
        return node.Bitmaps;
    }

    /// <summary>Adds a persistent bitmap to a closed image.</summary>
    public static ValueTask AddBitmapAsync(string path, string name, long granularity = 0, bool enabled = true) =>
        WithImageAsync(path, node => node.AddBitmapAsync(name, granularity, enabled));

    /// <summary>Removes a persistent bitmap from a closed image.</summary>
    public static ValueTask RemoveBitmapAsync(string path, string name) =>
        WithImageAsync(path, node => node.RemoveBitmapAsync(name));

    /// <summary>Enables or disables a persistent bitmap of a closed image.</summary>
    public static ValueTask SetBitmapEnabledAsync(string path, string name, bool enabled) =>
        WithImageAsync(path, node => node.SetBitmapEnabledAsync(name, enabled));

    /// <summary>Clears a persistent bitmap of a closed image.</summary>
    public static ValueTask ClearBitmapAsync(string path, string name) =>
        WithImageAsync(path, node => node.ClearBitmapAsync(name));

    /// <summary>Merges bitmaps of a closed image into <paramref name="target"/>.</summary>
    public static ValueTask MergeBitmapsAsync(string path, string target, IEnumerable<string> sources) =>
        WithImageAsync(path, node => node.MergeBitmapsAsync(target, sources));

    /// <summary>Resizes a closed image (see <see cref="Qcow2Node.ResizeAsync"/>).</summary>
    public static ValueTask ResizeAsync(string path, long newSize) =>
        WithImageAsync(path, node => node.ResizeAsync(newSize));

    /// <summary>Changes the backing file reference of a closed image without copying data.</summary>
    public static ValueTask RebaseUnsafeAsync(string path, string? backingFile, string? backingFormat) =>
        WithImageAsync(path, node => node.ChangeBackingFileAsync(backingFile, backingFormat));

    /// <summary>
    /// Changes image options in place: compatibility level, lazy refcounts, refcount width, backing file.
    /// A refcount width change rewrites the refcount structure and then reclaims the old one.
    /// </summary>
    public static async ValueTask AmendAsync(string path, Qcow2AmendOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var reclaim = false;
        var node = await Qcow2Node.OpenAsync(path, new Qcow2OpenOptions { OpenBacking = false }).ConfigureAwait(false);
        await using (node.ConfigureAwait(false))
        {
            if (options.Compat == Qcow2Compat.V3)
            {
                await node.UpgradeToV3Async().ConfigureAwait(false);
            }
            if (options.LazyRefcounts is { } lazy)
            {
                await node.SetLazyRefcountsAsync(lazy).ConfigureAwait(false);
            }
            if (options.RemoveBackingFile)
            {
                await node.ChangeBackingFileAsync(null, null).ConfigureAwait(false);
            }
            else if (options.BackingFile is not null)
            {
                await node.ChangeBackingFileAsync(options.BackingFile, options.BackingFormat).ConfigureAwait(false);
            }
            if (options.Compat == Qcow2Compat.V2)
            {
                await node.DowngradeToV2Async().ConfigureAwait(false);
            }
            if (options.RefcountBits is { } bits)
            {
                if (bits < 1 || bits > 64 || !BitOperations.IsPow2(bits))
                {
                    Qcow2Error.Argument("Refcount width must be a power of two and may not exceed 64 bits");
                }
                var order = BitOperations.Log2((uint)bits);
                if (bits != node.RefcountBits)
                {
                    reclaim = true;
                    await node.ChangeRefcountOrderAsync(order).ConfigureAwait(false);
                }
            }
        }
        if (reclaim)
        {
            var result = await CheckAsync(path, Qcow2RepairMode.Leaks).ConfigureAwait(false);
            if (result.ExitCode != 0)
            {
                throw new BlockException(BlockError.Io, "qcow2: refcount width changed but the image does not check clean: " + string.Join("; ", result.Messages.Take(5)));
            }
        }
    }

    private static async ValueTask WithImageAsync(string path, Func<Qcow2Node, ValueTask> op)
    {
        var node = await Qcow2Node.OpenAsync(path, new Qcow2OpenOptions { OpenBacking = false }).ConfigureAwait(false);
        await using (node.ConfigureAwait(false))
        {
            await op(node).ConfigureAwait(false);
        }
    }

    private static async ValueTask<T> WithImageAsync<T>(string path, Func<Qcow2Node, ValueTask<T>> op)
    {
        var node = await Qcow2Node.OpenAsync(path, new Qcow2OpenOptions { OpenBacking = false }).ConfigureAwait(false);
        await using (node.ConfigureAwait(false))
        {
            return await op(node).ConfigureAwait(false);
        }
    }

    /// <summary>Reads the dirty runs of a bitmap of a closed image.</summary>
    public static async ValueTask<IReadOnlyList<Extent>> QueryBitmapAsync(string path, string name)
    {
        await using var node = await Qcow2Node.OpenAsync(path, new Qcow2OpenOptions { ReadOnly = true, OpenBacking = false }).ConfigureAwait(false);
        var list = new ExtentList();
        list.Reset(0, node.Size);
        await node.QueryBitmapAsync(name, 0, node.Size, list).ConfigureAwait(false);
        return list.Items.ToArray();
    }
}
