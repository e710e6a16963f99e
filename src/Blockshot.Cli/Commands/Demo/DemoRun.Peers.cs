using System.Globalization;
using Blockshot.Core.Extents;
using Blockshot.Daemon.Protocol;

namespace Blockshot.Cli.Commands.Demo;

// What the standard tools say about the same exports and files, when they are installed.
internal sealed partial class DemoRun
{
    private async Task RunPeersAsync(ExportInfo snapshot, List<Extent> expected)
    {
        if (DemoTools.Find("qemu-img") is { } qemuImg)
        {
            var (code, output, error) = await DemoTools.RunAsync(qemuImg, ["compare", "-f", "qcow2", "-F", "raw", Restored, snapshot.Uri!], ct).ConfigureAwait(false);
            Check(code == 0, $"qemu-img compare of {Restored} and '{snapshot.Name}' exited {code}: {(output + error).Trim()}");
            Say($"qemu-img compare of the restored backup and '{snapshot.Name}': {output.Trim()}");
        }
        if (DemoTools.Find("nbdinfo") is { } nbdinfo)
        {
            var (code, output, error) = await DemoTools.RunAsync(nbdinfo, [$"--map={BitmapContext}", snapshot.Uri!], ct).ConfigureAwait(false);
            Check(code == 0, $"nbdinfo --map={BitmapContext} exited {code}: {error.Trim()}");
            var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            var dirty = DemoTools.Dirty(lines.Select(ParseMapLine));
            Check(dirty.Select(e => (e.Offset, e.Length)).SequenceEqual(expected.Select(e => (e.Offset, e.Length))),
                $"nbdinfo reads the dirty runs {DemoTools.Describe(dirty)}, not {DemoTools.Describe(expected)}");
            Say($"nbdinfo --map={BitmapContext} of '{snapshot.Name}' (the same runs):");
            foreach (var line in lines)
            {
                Detail(line.TrimEnd());
            }
        }
    }

    /// <summary>One line of <c>nbdinfo --map</c>: offset, length, type, description.</summary>
    private static Extent ParseMapLine(string line)
    {
        var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length < 3 || !long.TryParse(fields[0], CultureInfo.InvariantCulture, out var offset)
            || !long.TryParse(fields[1], CultureInfo.InvariantCulture, out var length) || !uint.TryParse(fields[2], CultureInfo.InvariantCulture, out var type))
        {
            throw new CliException($"demo failed: cannot read nbdinfo's map line '{line}'", ExitCodes.Failure);
        }
        return new Extent(offset, length, type);
    }
}
