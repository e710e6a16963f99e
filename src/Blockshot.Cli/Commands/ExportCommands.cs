using System.CommandLine;
using System.Text.Json.Nodes;
using Blockshot.Cli.Client;
using Blockshot.Daemon.Protocol;

namespace Blockshot.Cli.Commands;

/// <summary><c>blockshot export add|remove|list</c>: exports bound to devices.</summary>
internal static class ExportCommands
{
    public static Command Create()
    {
        var command = new Command("export", "Add, remove and list exports of the daemon's devices");
        command.Subcommands.Add(Add());
        command.Subcommands.Add(Remove());
        command.Subcommands.Add(List());
        return command;
    }

    private static Command Add()
    {
        var device = new Argument<string>("DEVICE") { Description = "Device to export" };
        var type = TypeOption();
        var name = new Option<string?>("--name", "-x") { Description = "Export name (default: the device name)" };
        var readOnly = new Option<bool>("--read-only", "-r") { Description = "Refuse writes" };
        var description = new Option<string?>("--description", "-D") { Description = "Description shown to clients" };
        var path = new Option<string?>("--path", "-p") { Description = "fuse: the regular file to mount the device on (created if missing)" };
        var loop = new Option<bool>("--loop") { Description = "fuse: attach a loop device to the file and print /dev/loopN" };
        var command = new Command("add", "Export a device") { device, type, name, readOnly, description, path, loop };
        command.Validators.Add(result => CheckFuseOptions(result, type, path, loop));
        command.SetAction(DaemonCall.Action(async (parse, client, ct) =>
        {
            var info = await client.CallAsync("export.add", new JsonObject
            {
                ["device"] = parse.GetValue(device),
                ["type"] = parse.GetValue(type),
                ["name"] = parse.GetValue(name),
                ["read-only"] = parse.GetValue(readOnly),
                ["description"] = parse.GetValue(description),
                // The daemon has its own working directory: send the path as the client means it.
                ["path"] = parse.GetValue(path) is { } file ? Path.GetFullPath(file) : null,
                ["loop"] = parse.GetValue(loop) ? true : null,
            }, ProtocolJsonContext.Default.ExportInfo, ct).ConfigureAwait(false);
            if (ClientOptions.Json(parse))
            {
                Printer.Json(info, ProtocolJsonContext.Default.ExportInfo);
            }
            else
            {
                await SayAsync(info,
                    $"exported device {info.Device} as {info.Type} export '{info.Name}' ({Printer.Mode(info.ReadOnly)}){(Where(info) is { } where ? ": " + where : "")}")
                    .ConfigureAwait(false);
            }
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Remove()
    {
        var name = new Argument<string>("EXPORT") { Description = "Export name" };
        var command = new Command("remove", "Remove an export; its clients are disconnected after their requests finish") { name };
        command.SetAction(DaemonCall.Action(async (parse, client, ct) =>
        {
            var result = await client.CallAsync("export.remove", new JsonObject { ["name"] = parse.GetValue(name) }, ct).ConfigureAwait(false);
            DeviceCommands.Say(parse, result, $"removed export {parse.GetValue(name)}");
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command List()
    {
        var command = new Command("list", "List exports");
        command.SetAction(DaemonCall.Action(async (parse, client, ct) =>
        {
            var exports = await client.CallAsync("export.list", null, ProtocolJsonContext.Default.ListExportInfo, ct).ConfigureAwait(false);
            if (ClientOptions.Json(parse))
            {
                Printer.Json(exports, ProtocolJsonContext.Default.ListExportInfo);
                return ExitCodes.Success;
            }
            var table = new TextTable("NAME", "DEVICE", "TYPE", "MODE", "CLIENTS", "WHERE").Right(4);
            foreach (var e in exports)
            {
                table.Add(e.Name, e.Device, e.Type, Printer.Mode(e.ReadOnly), e.Clients.ToString(System.Globalization.CultureInfo.InvariantCulture), Where(e) ?? "-");
            }
            Printer.Line(table.Count == 0 ? "no exports" : table.ToString());
            return ExitCodes.Success;
        }));
        return command;
    }

    /// <summary>The <c>--type nbd|fuse</c> option of <c>export add</c> and <c>snapshot export</c>.</summary>
    public static Option<string> TypeOption()
    {
        var type = new Option<string>("--type", "-t") { Description = "Export type: nbd or fuse", DefaultValueFactory = _ => "nbd" };
        type.AcceptOnlyFromAmong("nbd", "fuse");
        return type;
    }

    /// <summary>True when the command line asks for <c>--type fuse</c>.</summary>
    public static bool IsFuse(System.CommandLine.Parsing.CommandResult result, Option<string> type) =>
        // The raw token: GetValue would throw for a type AcceptOnlyFromAmong already refused.
        result.GetResult(type)?.Tokens is [.., { Value: "fuse" }];

    /// <summary>FUSE needs <c>--path</c>; <c>--path</c> and <c>--loop</c> belong to FUSE only.</summary>
    public static void CheckFuseOptions(System.CommandLine.Parsing.CommandResult result, Option<string> type, Option<string?> path, Option<bool> loop)
    {
        var isFuse = IsFuse(result, type);
        if (isFuse && result.GetValue(path) is null)
        {
            result.AddError("--type fuse needs --path FILE: the regular file to mount on");
        }
        if (!isFuse && (result.GetValue(path) is not null || result.GetValue(loop)))
        {
            result.AddError("--path and --loop apply to --type fuse only");
        }
    }

    /// <summary>
    /// Says what was exported. With a loop device, the device path goes alone on stdout, for scripts
    /// (<c>dev=$(blockshot export add ... --loop)</c>), and the sentence on stderr.
    /// </summary>
    public static async Task SayAsync(ExportInfo info, string sentence)
    {
        if (info.LoopDevice is { } loopDevice)
        {
            await Console.Error.WriteLineAsync(sentence).ConfigureAwait(false);
            Printer.Line(loopDevice);
        }
        else
        {
            Printer.Line(sentence);
        }
    }

    /// <summary>Where clients find an export: the NBD URI, or the FUSE file and its loop device.</summary>
    public static string? Where(ExportInfo e) => e.Path is { } file
        ? file + (e.LoopDevice is { } loop ? $" (loop device {loop})" : "")
        : e.Uri;
}
