using System.Globalization;
using System.Text;

namespace Blockshot.Fuse.Mounting;

/// <summary>One line of <c>/proc/self/mountinfo</c>.</summary>
/// <param name="Id">Mount id.</param>
/// <param name="ParentId">Parent mount id.</param>
/// <param name="Major">Major number of the superblock's device.</param>
/// <param name="Minor">Minor number of the superblock's device (for FUSE, the connection number).</param>
/// <param name="MountPoint">Where it is mounted, unescaped.</param>
/// <param name="FsType">Filesystem type, e.g. <c>fuse.blockshot</c>.</param>
/// <param name="Source">Mount source, e.g. <c>blockshot</c>.</param>
internal sealed record MountEntry(int Id, int ParentId, uint Major, uint Minor, string MountPoint, string FsType, string Source);

/// <summary>Reads the mount table of this process's mount namespace.</summary>
internal static class MountTable
{
    private const string MountInfoPath = "/proc/self/mountinfo";

    /// <summary>Every mount, in the order the kernel lists them (later mounts stack on earlier ones).</summary>
    public static List<MountEntry> Read() => Parse(File.ReadAllText(MountInfoPath));

    /// <summary>The mounts at <paramref name="mountPoint"/> (a full path), bottom first.</summary>
    public static List<MountEntry> At(string mountPoint)
    {
        var result = new List<MountEntry>();
        foreach (var entry in Read())
        {
            if (entry.MountPoint == mountPoint)
            {
                result.Add(entry);
            }
        }
        return result;
    }

    /// <summary>Parses mountinfo text; malformed lines are skipped.</summary>
    public static List<MountEntry> Parse(string text)
    {
        var result = new List<MountEntry>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
            var fields = line.Split(' ');
            var dash = fields.Length < 7 ? -1 : Array.IndexOf(fields, "-", 6);
            if (dash < 0 || dash + 2 >= fields.Length)
            {
                continue;
            }
            var device = fields[2].Split(':');
            if (device.Length != 2
                || !int.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var id)
                || !int.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var parent)
                || !uint.TryParse(device[0], NumberStyles.None, CultureInfo.InvariantCulture, out var major)
                || !uint.TryParse(device[1], NumberStyles.None, CultureInfo.InvariantCulture, out var minor))
            {
                continue;
            }
            result.Add(new MountEntry(id, parent, major, minor, Unescape(fields[4]), Unescape(fields[dash + 1]), Unescape(fields[dash + 2])));
        }
        return result;
    }

    /// <summary>Undoes the kernel's octal escapes of space, tab, newline and backslash (<c>\040</c> and so on).</summary>
    public static string Unescape(string field)
    {
        if (!field.Contains('\\', StringComparison.Ordinal))
        {
            return field;
        }
        var text = new StringBuilder(field.Length);
        for (var i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && IsOctal(field, i + 1))
            {
                text.Append((char)(((field[i + 1] - '0') << 6) | ((field[i + 2] - '0') << 3) | (field[i + 3] - '0')));
                i += 3;
            }
            else
            {
                text.Append(field[i]);
            }
        }
        return text.ToString();
    }

    private static bool IsOctal(string s, int start)
    {
        if (start + 3 > s.Length)
        {
            return false;
        }
        for (var i = start; i < start + 3; i++)
        {
            if (s[i] is < '0' or > '7')
            {
                return false;
            }
        }
        return true;
    }
}
