using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Blockshot.Cli.Client;
using Blockshot.Daemon.Protocol;

namespace Blockshot.Cli.Commands;

/// <summary><c>blockshot cbt attach|detach|info|map|mark-dirty|reset</c>: changed-block tracking.</summary>
internal static class CbtCommands
{
    public static Command Create()
    {
        var command = new Command("cbt", "Changed-block tracking of the daemon's devices: which blocks changed since a snapshot");
        command.Subcommands.Add(Attach());
        command.Subcommands.Add(Detach());
        command.Subcommands.Add(Info());
        command.Subcommands.Add(Map());
        command.Subcommands.Add(MarkDirty());
        command.Subcommands.Add(Reset());
        return command;
    }

    private static Argument<string> Device() => new("DEVICE") { Description = "Device name" };

    private static Command Attach()
    {
        var device = Device();
        var blockSize = new Option<string?>("--block-size") { Description = "Tracking block size, a power of two ≥ 4K (default 64K)" };
        var sidecar = new Option<string?>("--sidecar") { Description = "The map's file ('none': memory only; default FILE.cbt beside the image)" };
        var store = new Option<string?>("--store") { Description = "Also keep the generation's changes in the image: qcow2-bitmap[:NAME] (default name blockshot-cbt)" };
        var command = new Command("attach", "Attach tracking to a device while clients stay connected (before its first snapshot)") { device, blockSize, sidecar, store };
        command.SetAction(DaemonCall.Action(async (parse, client, ct) =>
        {
            var args = new JsonObject { ["device"] = parse.GetValue(device) };
            if (parse.GetValue(blockSize) is { } b)
            {
                args["block-size"] = Size(b, "--block-size");
            }
            if (parse.GetValue(sidecar) is { } s)
            {
                args["sidecar"] = s == "none" ? s : Path.GetFullPath(s);
            }
            if (parse.GetValue(store) is { } st)
            {
                args["store"] = st;
            }
            var info = await client.CallAsync("cbt.attach", args, ProtocolJsonContext.Default.CbtInfo, ct).ConfigureAwait(false);
            Print(parse, info);
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Detach()
    {
        var device = Device();
        var command = new Command("detach", "Detach tracking (the sidecar records a clean stop)") { device };
        command.SetAction(DaemonCall.Action(async (parse, client, ct) =>
        {
            var result = await client.CallAsync("cbt.detach", new JsonObject { ["device"] = parse.GetValue(device) }, ct).ConfigureAwait(false);
            DeviceCommands.Say(parse, result, $"detached tracking from {parse.GetValue(device)}");
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Info()
    {
        var device = Device();
        var command = new Command("info", "Generation, block size, current period and changed blocks") { device };
        command.SetAction(DaemonCall.Action(async (parse, client, ct) =>
        {
            var info = await client.CallAsync("cbt.info", new JsonObject { ["device"] = parse.GetValue(device) }, ProtocolJsonContext.Default.CbtInfo, ct)
                .ConfigureAwait(false);
            Print(parse, info);
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Map()
    {
        var device = Device();
        var since = new Option<int>("--since") { Description = "Period number: changes after it are listed (0: the whole generation)", Required = true };
        var command = new Command("map", "The byte ranges changed after a period (--output json for the full answer; text and 'ranges' print OFFSET:LENGTH lines)") { device, since };
        command.SetAction(DaemonCall.Action(async (parse, client, ct) =>
        {
            var map = await client.CallAsync("cbt.map", new JsonObject { ["device"] = parse.GetValue(device), ["since"] = parse.GetValue(since) },
                ProtocolJsonContext.Default.CbtMap, ct).ConfigureAwait(false);
            if (ClientOptions.Json(parse))
            {
                Printer.Json(map, ProtocolJsonContext.Default.CbtMap);
                return ExitCodes.Success;
            }
            var text = new StringBuilder();
            foreach (var range in map.Ranges)
            {
                text.Append(range.Offset.ToString(CultureInfo.InvariantCulture)).Append(':').Append(range.Length.ToString(CultureInfo.InvariantCulture)).Append('\n');
            }
            Console.Out.Write(text.ToString());
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command MarkDirty()
    {
        var device = Device();
        var range = new Option<string>("--range") { Description = "OFFSET:LENGTH (sizes like 1M allowed)", Required = true };
        var command = new Command("mark-dirty", "Mark a range changed without writing it") { device, range };
        command.SetAction(DaemonCall.Action(async (parse, client, ct) =>
        {
            var text = parse.GetValue(range)!;
            var colon = text.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                throw new CliException($"--range '{text}': expected OFFSET:LENGTH", ExitCodes.Usage);
            }
            var args = new JsonObject
            {
                ["device"] = parse.GetValue(device),
                ["offset"] = Size(text[..colon], "--range offset", allowZero: true),
                ["length"] = Size(text[(colon + 1)..], "--range length"),
            };
            var result = await client.CallAsync("cbt.mark-dirty", args, ct).ConfigureAwait(false);
            DeviceCommands.Say(parse, result, $"marked {text} of {parse.GetValue(device)} dirty");
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Reset()
    {
        var device = Device();
        var reason = new Option<string?>("--reason") { Description = "Recorded with the new generation" };
        var command = new Command("reset", "Start a new generation: the next backup must be full") { device, reason };
        command.SetAction(DaemonCall.Action(async (parse, client, ct) =>
        {
            var info = await client.CallAsync("cbt.reset", new JsonObject { ["device"] = parse.GetValue(device), ["reason"] = parse.GetValue(reason) },
                ProtocolJsonContext.Default.CbtInfo, ct).ConfigureAwait(false);
            Print(parse, info);
            return ExitCodes.Success;
        }));
        return command;
    }

    private static void Print(ParseResult parse, CbtInfo info)
    {
        if (ClientOptions.Json(parse))
        {
            Printer.Json(info, ProtocolJsonContext.Default.CbtInfo);
            return;
        }
        Printer.Line($"{info.Device}: generation {info.Generation} ({info.GenerationReason})");
        Printer.Line($"  block size {info.BlockSize / 1024} KiB, period {info.Period}, {info.ChangedBlocks} block(s) changed in the generation, {info.ChangedInPeriod} in this period");
        Printer.Line($"  map {SizeText.Format(info.MapBytes)} in memory, sidecar {info.Sidecar ?? "none (memory only)"}{(info.PersistenceProblem is null ? "" : $" — not vouching: {info.PersistenceProblem}")}");
        if (info.Qcow2Bitmap is { } bitmap)
        {
            Printer.Line($"  the generation's changes also in the image's persistent bitmap {bitmap}");
        }
    }

    private static long Size(string text, string what, bool allowZero = false)
    {
        if (!SizeText.TryParse(text, out var bytes) || bytes < 0 || (bytes == 0 && !allowZero))
        {
            throw new CliException($"{what} '{text}' is not a size", ExitCodes.Usage);
        }
        return bytes;
    }
}
