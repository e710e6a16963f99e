using System.CommandLine;
using System.Globalization;
using System.Text;
using Blockshot.Core.Extents;
using Blockshot.Qcow2;

namespace Blockshot.Cli.Commands.Image;

/// <summary><c>blockshot image map</c>: where each run of the disk comes from, through the backing chain.</summary>
internal static class MapCommand
{
    public static Command Create()
    {
        var file = ImageArgs.File();
        var format = ImageArgs.Format();
        var output = ImageArgs.Output();
        var start = new Option<string?>("--start-offset", "-s") { Description = "First byte to map (default 0)" };
        var maxLength = new Option<string?>("--max-length", "-l") { Description = "Map at most this many bytes" };
        var forceShare = ImageArgs.ForceShare();
        var command = new Command("map", "Show how each run of the disk is stored (data, zeros, which image of the chain)")
        {
            file, format, output, start, maxLength, forceShare,
        };
        command.SetAction(ImageErrors.Guard(async (parse, _) =>
        {
            var path = parse.GetValue(file)!;
            var opened = await ImageOpener.OpenAsync(path, parse.GetValue(format), readOnly: true, direct: false, locking: !parse.GetValue(forceShare)).ConfigureAwait(false);
            await using var node = opened.Node;
            var offset = Size(parse.GetValue(start), "--start-offset") ?? 0;
            var length = Size(parse.GetValue(maxLength), "--max-length") ?? long.MaxValue;
            offset = Math.Min(offset, node.Size);
            length = Math.Min(length, node.Size - offset);
            IReadOnlyList<Qcow2MapEntry> entries = node is Qcow2Node q
                ? await q.MapAsync(offset, length).ConfigureAwait(false)
                : await RawMapAsync(node, path, offset, length).ConfigureAwait(false);
            if (parse.GetValue(output) == "json")
            {
                Console.Write(Json(entries));
                return ExitCodes.Success;
            }
            Console.Write(Human(entries));
            return ExitCodes.Success;
        }));
        return command;
    }

    private static long? Size(string? text, string option) => text is null ? null
        : SizeText.TryParse(text, out var v) ? v : throw new CliException($"{option}: '{text}' is not a size", ExitCodes.Usage);

    private static async Task<IReadOnlyList<Qcow2MapEntry>> RawMapAsync(Core.BlockNode node, string path, long offset, long length)
    {
        var list = new List<Qcow2MapEntry>();
        var extents = new ExtentList();
        var end = offset + length;
        var pos = offset;
        while (pos < end)
        {
            extents.Reset(pos, end - pos);
            await node.GetExtentsAsync(pos, end - pos, extents).ConfigureAwait(false);
            foreach (var e in extents.Items)
            {
                var zero = (e.Flags & AllocationFlags.Zero) != 0;
                list.Add(new Qcow2MapEntry(e.Offset, e.Length, 0, true, zero, !zero, e.Offset, false, path));
            }
            pos = extents.End > pos ? extents.End : end;
        }
        return list;
    }

    /// <summary>One JSON object per line, exactly as the reference tool writes them.</summary>
    public static string Json(IReadOnlyList<Qcow2MapEntry> entries)
    {
        var sb = new StringBuilder("[");
        for (var i = 0; i < entries.Count; i++)
        {
            var e = entries[i];
            if (i > 0)
            {
                sb.Append(",\n");
            }
            sb.Append(CultureInfo.InvariantCulture,
                $"{{ \"start\": {e.Start}, \"length\": {e.Length}, \"depth\": {e.Depth}, \"present\": {Bool(e.Present)}, \"zero\": {Bool(e.Zero)}, \"data\": {Bool(e.Data)}");
            if (e.Offset is { } host)
            {
                sb.Append(CultureInfo.InvariantCulture, $", \"offset\": {host}");
            }
            sb.Append('}');
        }
        return sb.Append("]\n").ToString();
    }

    /// <summary>The data runs with their host offsets, in the reference tool's columns.</summary>
    public static string Human(IReadOnlyList<Qcow2MapEntry> entries)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{"Offset",-16}{"Length",-16}{"Mapped to",-16}{"File"}\n");
        Qcow2MapEntry? pending = null;
        foreach (var e in entries)
        {
            if (!e.Data)
            {
                continue;
            }
            if (e.Offset is null)
            {
                throw new CliException("File contains external, encrypted or compressed clusters (use --output json)", ExitCodes.Failure);
            }
            // Adjacent runs contiguous on the host in one file print as one line.
            if (pending is { } p && p.File == e.File && p.Start + p.Length == e.Start && p.Offset + p.Length == e.Offset)
            {
                pending = p with { Length = p.Length + e.Length };
                continue;
            }
            if (pending is { } q)
            {
                Line(sb, q);
            }
            pending = e;
        }
        if (pending is { } last)
        {
            Line(sb, last);
        }
        return sb.ToString();
    }

    private static void Line(StringBuilder sb, Qcow2MapEntry e) =>
        sb.Append(CultureInfo.InvariantCulture, $"{Hex(e.Start),-16}{Hex(e.Length),-16}{Hex(e.Offset!.Value),-16}{e.File}\n");

    private static string Hex(long v) => v == 0 ? "0" : "0x" + v.ToString("x", CultureInfo.InvariantCulture);

    private static string Bool(bool b) => b ? "true" : "false";
}
