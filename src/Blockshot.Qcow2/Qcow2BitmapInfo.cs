using Blockshot.Qcow2.Format;

namespace Blockshot.Qcow2;

/// <summary>A persistent dirty bitmap of an image.</summary>
/// <param name="Name">The bitmap name.</param>
/// <param name="Granularity">Bytes of disk one bit covers.</param>
/// <param name="Enabled">Whether writes are recorded (the "auto" flag).</param>
/// <param name="Inconsistent">Not saved cleanly (found in use when the image was opened): only removal is allowed.</param>
/// <param name="Flags">The flags as they stand on disk.</param>
public sealed record Qcow2BitmapInfo(string Name, long Granularity, bool Enabled, bool Inconsistent, BitmapFlags Flags)
{
    /// <summary>The flag names the reference tool prints ("in-use", "auto").</summary>
    public IReadOnlyList<string> FlagNames
    {
        get
        {
            var names = new List<string>();
            if ((Flags & BitmapFlags.InUse) != 0)
            {
                names.Add("in-use");
            }
            if ((Flags & BitmapFlags.Auto) != 0)
            {
                names.Add("auto");
            }
            return names;
        }
    }
}
