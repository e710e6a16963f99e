using System.Text.Json;

namespace Blockshot.Interop.Tests;

/// <summary>Runs <c>blockshot image</c> and the reference tools side by side, and compares what they print.</summary>
public static class ImageTool
{
    /// <summary>True when the long matrices were asked for (BLOCKSHOT_LONG_TESTS=1).</summary>
    public static bool Long => Environment.GetEnvironmentVariable("BLOCKSHOT_LONG_TESTS") == "1";

    /// <summary><c>blockshot image ARGS</c>.</summary>
    public static Task<Run.Result> OursAsync(params string[] args) => Run.ToEndAsync(Repo.Launcher, ["image", .. args]);

    /// <summary><c>qemu-img ARGS</c>.</summary>
    public static Task<Run.Result> QemuAsync(params string[] args) => Run.ToEndAsync("qemu-img", args);

    /// <summary><c>qemu-img ARGS</c>, failing the test unless it exits 0.</summary>
    public static async Task<string> QemuOkAsync(params string[] args) =>
        (await QemuAsync(args)).Ok("qemu-img " + string.Join(' ', args)).Stdout;

    /// <summary><c>blockshot image ARGS</c>, failing the test unless it exits 0.</summary>
    public static async Task<string> OursOkAsync(params string[] args) =>
        (await OursAsync(args)).Ok("blockshot image " + string.Join(' ', args)).Stdout;

    /// <summary>qemu-io commands on an image (each one a -c), failing the test on any error.</summary>
    public static async Task IoAsync(string image, string format, params string[] commands)
    {
        var args = new List<string> { "-f", format };
        foreach (var c in commands)
        {
            args.Add("-c");
            args.Add(c);
        }
        args.Add(image);
        var r = (await Run.ToEndAsync("qemu-io", args)).Ok("qemu-io");
        Assert.DoesNotContain("failed", r.Stdout + r.Stderr, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>qemu-img check: exit code and output.</summary>
    public static async Task AssertCleanAsync(string image)
    {
        var r = await QemuAsync("check", image);
        Assert.True(r.ExitCode == 0, $"qemu-img check {image} exited {r.ExitCode}: {r.Stdout}{r.Stderr}");
    }

    /// <summary>qemu-img compare: the two images read the same.</summary>
    public static async Task AssertSameContentAsync(string a, string b)
    {
        var r = await QemuAsync("compare", a, b);
        Assert.True(r.ExitCode == 0, $"qemu-img compare {a} {b} exited {r.ExitCode}: {r.Stdout}{r.Stderr}");
    }

    /// <summary>
    /// Differences between two JSON documents on the keys both have (objects), element by element
    /// (arrays, which must have the same length), and in value (everything else).
    /// </summary>
    public static List<string> CommonFieldDifferences(JsonElement ours, JsonElement theirs, string path = "$")
    {
        var diffs = new List<string>();
        Compare(ours, theirs, path, diffs);
        return diffs;
    }

    /// <summary>Keys both documents have, recursively, to prove the comparison covered something.</summary>
    public static int CommonFieldCount(JsonElement ours, JsonElement theirs)
    {
        if (ours.ValueKind == JsonValueKind.Object && theirs.ValueKind == JsonValueKind.Object)
        {
            var n = 0;
            foreach (var p in ours.EnumerateObject())
            {
                if (theirs.TryGetProperty(p.Name, out var t))
                {
                    n += 1 + CommonFieldCount(p.Value, t);
                }
            }
            return n;
        }
        if (ours.ValueKind == JsonValueKind.Array && theirs.ValueKind == JsonValueKind.Array)
        {
            return ours.EnumerateArray().Zip(theirs.EnumerateArray()).Sum(x => CommonFieldCount(x.First, x.Second));
        }
        return 0;
    }

    private static void Compare(JsonElement a, JsonElement b, string path, List<string> diffs)
    {
        if (a.ValueKind == JsonValueKind.Object && b.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in a.EnumerateObject())
            {
                if (b.TryGetProperty(p.Name, out var other))
                {
                    Compare(p.Value, other, $"{path}.{p.Name}", diffs);
                }
            }
            return;
        }
        if (a.ValueKind == JsonValueKind.Array && b.ValueKind == JsonValueKind.Array)
        {
            var x = a.EnumerateArray().ToList();
            var y = b.EnumerateArray().ToList();
            if (x.Count != y.Count)
            {
                diffs.Add($"{path}: {x.Count} elements here, {y.Count} there");
                return;
            }
            for (var i = 0; i < x.Count; i++)
            {
                Compare(x[i], y[i], $"{path}[{i}]", diffs);
            }
            return;
        }
        if (a.GetRawText() != b.GetRawText())
        {
            diffs.Add($"{path}: {a.GetRawText()} here, {b.GetRawText()} there");
        }
    }

    /// <summary>Writes seeded data at the given (offset, length) places of a new sparse raw file.</summary>
    public static string RawWith(string path, long size, int seed, params (long Offset, int Length)[] places)
    {
        using var f = File.Open(path, FileMode.Create, FileAccess.ReadWrite);
        f.SetLength(size);
        foreach (var (offset, length) in places)
        {
            f.Position = offset;
            f.Write(Patterns.Make(length, offset, seed));
        }
        return path;
    }

    /// <summary>A sparse raw file with data scattered over it.</summary>
    public static string ScatteredRaw(string path, long size, int seed, int pieces = 24)
    {
        var rng = new Random(seed);
        var places = new (long, int)[pieces];
        for (var i = 0; i < pieces; i++)
        {
            var length = rng.Next(1, 1 << 20);
            places[i] = (rng.NextInt64(0, size - length), length);
        }
        return RawWith(path, size, seed, places);
    }
}
