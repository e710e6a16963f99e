using System.Diagnostics;
using Blockshot.Core.Extents;

namespace Blockshot.Cli.Commands.Demo;

/// <summary>Small helpers of the demo: peer tools on PATH, disk usage, extent lists for display.</summary>
internal static class DemoTools
{
    public static string? Find(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    /// <summary>Runs a tool to completion; its exit code, stdout and stderr (read together, so neither can fill up).</summary>
    public static async Task<(int ExitCode, string Output, string Error)> RunAsync(string tool, string[] args, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(tool, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(psi)!;
        var output = process.StandardOutput.ReadToEndAsync(ct);
        var error = process.StandardError.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct).ConfigureAwait(false);
        return (process.ExitCode, await output.ConfigureAwait(false), await error.ConfigureAwait(false));
    }

    /// <summary>Bytes a file occupies on disk.</summary>
    public static long Allocated(string path)
    {
        using var process = Process.Start(new ProcessStartInfo("du", ["-B1", "--", path]) { RedirectStandardOutput = true });
        var text = process!.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return long.TryParse(text.Split('\t')[0], out var bytes) ? bytes : 0;
    }

    /// <summary>Allocation extents merged into runs of data and of holes.</summary>
    public static IEnumerable<Extent> MergeAllocation(IEnumerable<Extent> map)
    {
        Extent? current = null;
        foreach (var e in map)
        {
            var kind = (e.Flags & AllocationFlags.Hole) != 0 ? AllocationFlags.HoleZero : AllocationFlags.Data;
            if (current is { } c && c.Flags == kind && c.End == e.Offset)
            {
                current = c with { Length = c.Length + e.Length };
                continue;
            }
            if (current is { } done)
            {
                yield return done;
            }
            current = new Extent(e.Offset, e.Length, kind);
        }
        if (current is { } last)
        {
            yield return last;
        }
    }

    /// <summary>The runs whose flags have bit 1 set (dirty in a dirty bitmap), adjacent ones merged.</summary>
    public static List<Extent> Dirty(IEnumerable<Extent> map)
    {
        var runs = new List<Extent>();
        foreach (var e in map.Where(e => (e.Flags & 1) != 0))
        {
            if (runs.Count > 0 && runs[^1].End == e.Offset)
            {
                runs[^1] = runs[^1] with { Length = runs[^1].Length + e.Length };
            }
            else
            {
                runs.Add(new Extent(e.Offset, e.Length, 1));
            }
        }
        return runs;
    }

    public static string Describe(IEnumerable<Extent> runs) =>
        string.Join(", ", runs.Select(r => $"{r.Offset:N0}+{SizeText.Format(r.Length)}"));

    public static long Bytes(IEnumerable<Extent> runs) => runs.Sum(r => r.Length);
}
