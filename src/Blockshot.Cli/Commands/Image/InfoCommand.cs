using System.CommandLine;
using System.Text;
using System.Text.Json;
using Blockshot.Drivers;
using Blockshot.Qcow2;

namespace Blockshot.Cli.Commands.Image;

/// <summary>
/// <c>blockshot image info</c>: what an image is. The JSON uses the reference tool's keys and shape, so
/// scripts written for it read ours.
/// </summary>
internal static class InfoCommand
{
    public static Command Create()
    {
        var file = ImageArgs.File();
        var format = ImageArgs.Format();
        var output = ImageArgs.Output();
        var chain = new Option<bool>("--backing-chain") { Description = "Show every image of the backing chain, top first" };
        var forceShare = ImageArgs.ForceShare();
        var command = new Command("info", "Show an image's format, sizes, backing file, snapshots and bitmaps") { file, format, output, chain, forceShare };
        command.SetAction(ImageErrors.Guard(async (parse, _) =>
        {
            var path = parse.GetValue(file)!;
            var json = parse.GetValue(output) == "json";
            var infos = new List<ImageInfo>();
            var locking = !parse.GetValue(forceShare);
            var next = (Path: path, Format: parse.GetValue(format));
            var seen = new HashSet<string>(StringComparer.Ordinal);
            while (true)
            {
                if (!seen.Add(Path.GetFullPath(next.Path)))
                {
                    throw new CliException($"{next.Path}: the backing chain loops back to this image", ExitCodes.BadImage);
                }
                var info = await ReadAsync(next.Path, next.Format, locking).ConfigureAwait(false);
                infos.Add(info);
                if (!parse.GetValue(chain) || info.Qcow2?.FullBackingFilename is not { } backing)
                {
                    break;
                }
                next = (backing, info.Qcow2.BackingFilenameFormat);
            }
            Console.Write(json ? Json(infos, parse.GetValue(chain)) : string.Join("\n", infos.Select(Human)));
            return ExitCodes.Success;
        }));
        return command;
    }

    /// <summary>One image's facts: qcow2 ones, or the raw essentials.</summary>
    internal sealed record ImageInfo(string Filename, string Format, long VirtualSize, long ActualSize, Qcow2ImageInfo? Qcow2);

    /// <summary>Reads one image's information without opening its backing chain.</summary>
    internal static async Task<ImageInfo> ReadAsync(string path, string? format, bool locking)
    {
        format ??= ImageOpener.Probe(path);
        var opened = await ImageOpener.OpenAsync(path, format, readOnly: true, direct: false, locking, openBacking: false).ConfigureAwait(false);
        await using var node = opened.Node;
        if (node is Qcow2Node q)
        {
            var info = q.GetInfo();
            return new ImageInfo(path, "qcow2", info.VirtualSize, info.ActualSize, info);
        }
        var raw = (RawFileNode)node;
        return new ImageInfo(path, "raw", raw.Size, raw.GetAllocatedBytes(), null);
    }

    private static string Json(List<ImageInfo> infos, bool chain)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, JsonText.Options))
        {
            if (chain)
            {
                w.WriteStartArray();
            }
            foreach (var info in infos)
            {
                WriteJson(w, info);
            }
            if (chain)
            {
                w.WriteEndArray();
            }
        }
        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    private static void WriteJson(Utf8JsonWriter w, ImageInfo info)
    {
        if (info.Qcow2 is { } q)
        {
            q.WriteTo(w);
            return;
        }
        w.WriteStartObject();
        w.WriteNumber("virtual-size", info.VirtualSize);
        w.WriteString("filename", info.Filename);
        w.WriteString("format", "raw");
        w.WriteNumber("actual-size", info.ActualSize);
        w.WriteBoolean("dirty-flag", false);
        w.WriteEndObject();
    }

    private static string Human(ImageInfo info)
    {
        var sb = new StringBuilder();
        sb.Append("image: ").Append(info.Filename).Append('\n');
        sb.Append("file format: ").Append(info.Format).Append('\n');
        sb.Append($"virtual size: {HumanSize.Format(info.VirtualSize)} ({info.VirtualSize} bytes)\n");
        sb.Append("disk size: ").Append(HumanSize.Format(info.ActualSize)).Append('\n');
        if (info.Qcow2 is not { } q)
        {
            return sb.ToString();
        }
        sb.Append("cluster_size: ").Append(q.ClusterSize).Append('\n');
        if (q.BackingFilename is { } backing)
        {
            sb.Append("backing file: ").Append(backing);
            if (q.FullBackingFilename is { } full && full != backing)
            {
                sb.Append(" (actual path: ").Append(full).Append(')');
            }
            sb.Append('\n');
        }
        if (q.BackingFilenameFormat is { } bf)
        {
            sb.Append("backing file format: ").Append(bf).Append('\n');
        }
        if (q.Snapshots.Count > 0)
        {
            sb.Append("Snapshot list:\n");
            sb.Append(SnapshotCommand.Table(q.Snapshots));
        }
        sb.Append("Format specific information:\n");
        sb.Append("    compat: ").Append(q.Compat).Append('\n');
        sb.Append("    compression type: ").Append(q.CompressionType).Append('\n');
        if (q.Compat != "0.10")
        {
            sb.Append("    lazy refcounts: ").Append(Bool(q.LazyRefcounts)).Append('\n');
            if (q.Bitmaps.Count > 0)
            {
                sb.Append("    bitmaps:\n");
                for (var i = 0; i < q.Bitmaps.Count; i++)
                {
                    var b = q.Bitmaps[i];
                    sb.Append($"        [{i}]:\n            flags:\n");
                    for (var f = 0; f < b.FlagNames.Count; f++)
                    {
                        sb.Append($"                [{f}]: {b.FlagNames[f]}\n");
                    }
                    sb.Append($"            name: {b.Name}\n            granularity: {b.Granularity}\n");
                }
            }
        }
        sb.Append("    refcount bits: ").Append(q.RefcountBits).Append('\n');
        if (q.Compat != "0.10")
        {
            if (q.DataFile is { } data)
            {
                sb.Append("    data file: ").Append(data).Append('\n');
                sb.Append("    data file raw: ").Append(Bool(q.DataFileRaw)).Append('\n');
            }
            sb.Append("    corrupt: ").Append(Bool(q.Corrupt)).Append('\n');
            sb.Append("    extended l2: ").Append(Bool(q.ExtendedL2)).Append('\n');
        }
        return sb.ToString();
    }

    private static string Bool(bool b) => b ? "true" : "false";
}
