using System.Globalization;

namespace Blockshot.Drivers.Raw;

/// <summary>
/// Reads block-queue attributes from <c>/sys/dev/block/MAJ:MIN/queue</c>. A partition has no queue of
/// its own, so its parent disk's is used. Absent attributes (a filesystem on no block device, a kernel
/// without the attribute) read as null: the caller then assumes the conservative answer.
/// </summary>
internal static class SysBlock
{
    /// <summary>A numeric queue attribute of device <paramref name="major"/>:<paramref name="minor"/>, or null.</summary>
    public static long? QueueValue(uint major, uint minor, string attribute)
    {
        var dir = $"/sys/dev/block/{major}:{minor}";
        if (!Directory.Exists(dir))
        {
            return null;
        }
        var file = Path.Combine(dir, "queue", attribute);
        if (!File.Exists(file))
        {
            // A partition: its queue is its disk's, one level up from the resolved device directory.
            var parent = Directory.ResolveLinkTarget(dir, returnFinalTarget: true) is { } target
                ? Path.GetDirectoryName(target.FullName)
                : null;
            if (parent is null)
            {
                return null;
            }
            file = Path.Combine(parent, "queue", attribute);
        }
        try
        {
            var text = File.ReadAllText(file).Trim();
            return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Missing or unreadable attribute: unknown.
            return null;
        }
    }
}
