namespace Blockshot.Testing;

/// <summary>Finds external tools the interop tests drive.</summary>
public static class Tools
{
    private static readonly string[] ExtraDirs = ["/usr/sbin", "/sbin", "/usr/local/sbin"];

    /// <summary>The full path of <paramref name="name"/>, or null when it is not installed.</summary>
    public static string? Find(string name)
    {
        // BLOCKSHOT_TEST_HIDE_TOOLS=qemu-img,fio pretends those are missing (to check that tests skip loudly).
        var hidden = Environment.GetEnvironmentVariable("BLOCKSHOT_TEST_HIDE_TOOLS");
        if (hidden is not null && hidden.Split(',').Contains(Path.GetFileName(name)))
        {
            return null;
        }
        if (name.Contains('/'))
        {
            return File.Exists(name) ? name : null;
        }
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(ExtraDirs))
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        return null;
    }

    /// <summary>The full path of <paramref name="name"/>; throws when missing (tests guard with <see cref="RequiresToolsFactAttribute"/>).</summary>
    public static string Require(string name) =>
        Find(name) ?? throw new InvalidOperationException($"{name} is not installed");

    /// <summary>A reason to skip when any of <paramref name="names"/> is missing, else null.</summary>
    public static string? MissingReason(IEnumerable<string> names)
    {
        var missing = names.Where(n => Find(n) is null).ToArray();
        return missing.Length == 0 ? null : $"requires {string.Join(", ", missing)} (not installed; ./test.sh installs it)";
    }

    /// <summary>True when the process runs as root.</summary>
    public static bool IsRoot => Environment.UserName == "root" || geteuid() == 0;

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = false)]
    private static extern uint geteuid();
}
