using System.Security.Cryptography;

namespace Blockshot.Daemon.Interop.Tests;

/// <summary>A tree of files with seeded contents, recorded as relative path → SHA-256, for checking a filesystem against.</summary>
public static class FileTree
{
    /// <summary>Writes <paramref name="files"/> files in a few directories under <paramref name="root"/>; returns their checksums.</summary>
    public static Dictionary<string, string> Write(string root, int seed, int files = 12)
    {
        var random = new Random(seed);
        for (var i = 0; i < files; i++)
        {
            var relative = Path.Combine($"dir{i % 3}", $"sub{i % 2}", $"file{i}.bin");
            var data = new byte[i == 0 ? 0 : random.Next(1, 3 << 20)];
            random.NextBytes(data);
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(root, relative))!);
            File.WriteAllBytes(Path.Combine(root, relative), data);
        }
        return Read(root);
    }

    /// <summary>The checksum of every regular file under <paramref name="root"/> (lost+found left out).</summary>
    public static Dictionary<string, string> Read(string root) =>
        Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(root, f))
            .Where(r => !r.StartsWith("lost+found", StringComparison.Ordinal))
            .ToDictionary(r => r, r => Checksum(Path.Combine(root, r)), StringComparer.Ordinal);

    public static string Checksum(string file) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(file)));

    /// <summary>Asserts that <paramref name="root"/> holds exactly <paramref name="expected"/>, naming the first difference.</summary>
    public static void AssertEqual(IReadOnlyDictionary<string, string> expected, string root, string what)
    {
        var actual = Read(root);
        var missing = expected.Keys.Except(actual.Keys).Order(StringComparer.Ordinal).ToList();
        var extra = actual.Keys.Except(expected.Keys).Order(StringComparer.Ordinal).ToList();
        var changed = expected.Keys.Intersect(actual.Keys).Where(k => expected[k] != actual[k]).Order(StringComparer.Ordinal).ToList();
        Assert.True(missing.Count == 0 && extra.Count == 0 && changed.Count == 0,
            $"{what}: missing [{string.Join(", ", missing)}], unexpected [{string.Join(", ", extra)}], changed [{string.Join(", ", changed)}]");
    }
}
