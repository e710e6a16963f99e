using Blockshot.Qcow2;
using Blockshot.Tracking;

namespace Blockshot.Daemon.ChangeTracking;

/// <summary>
/// Keeps a persistent dirty bitmap in a tracked qcow2 image that holds the tracker's generation: the
/// blocks changed since the generation began (<c>cbt map --since 0</c>), at the tracking block size, so
/// qemu and libvirt tools can read it from the image. The qcow2 driver records every write in it (an
/// enabled bitmap), stores it at a clean close, and leaves it <c>in_use</c> after a crash; the sidecar
/// keeps the periods and the write-ahead marks. So the image's bitmap is always rebuilt from the
/// tracker's map: at attach (after the sidecar proved the map, or began a new generation) and at every
/// new generation.
/// </summary>
internal static class Qcow2BitmapMirror
{
    /// <summary>The bitmap name when <c>qcow2-bitmap</c> gives none.</summary>
    public const string DefaultName = "blockshot-cbt";

    /// <summary>Parses a store value: null for the sidecar alone, else the bitmap name.</summary>
    public static string? BitmapName(string? store) => store switch
    {
        null or "sidecar" => null,
        "qcow2-bitmap" => DefaultName,
        _ when store.StartsWith("qcow2-bitmap:", StringComparison.Ordinal) => store["qcow2-bitmap:".Length..],
        _ => throw new Protocol.ControlException(Protocol.ControlErrorCodes.InvalidParams, $"unknown tracking store '{store}' (expected sidecar or qcow2-bitmap[:NAME])"),
    };

    /// <summary>Replaces the image's bitmap by one holding the tracker's changes of this generation.</summary>
    public static async Task RebuildAsync(Qcow2Node image, string name, ChangeTracker tracker)
    {
        if (image.Bitmaps.Any(b => b.Name == name))
        {
            await image.RemoveBitmapAsync(name).ConfigureAwait(false); // in_use after a crash, or an older generation
        }
        await image.AddBitmapAsync(name, tracker.BlockSize, enabled: true).ConfigureAwait(false);
        await image.MarkBitmapAsync(name, Changed(tracker)).ConfigureAwait(false);
    }

    /// <summary>
    /// At a new generation: clears the bitmap, then sets the blocks the new generation has marked since
    /// (a write that raced the clear is in the tracker's map before it reaches the image).
    /// </summary>
    public static async Task ClearAsync(Qcow2Node image, string name, ChangeTracker tracker)
    {
        await image.ClearBitmapAsync(name).ConfigureAwait(false);
        await image.MarkBitmapAsync(name, Changed(tracker)).ConfigureAwait(false);
    }

    private static List<(long Offset, long Length)> Changed(ChangeTracker tracker) => tracker.ChangedRanges(tracker.Freeze(), 0);
}
