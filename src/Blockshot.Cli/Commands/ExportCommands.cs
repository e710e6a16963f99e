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
        var type = new Option<string>("--type", "-t") { Description = "Export type: nbd or fuse", DefaultValueFactory = _ => "nbd" };
        type.AcceptOnlyFromAmong("nbd", "fuse");
        var name = new Option<string?>("--name", "-x") { Description = "Export name (default: the device name)" };
        var readOnly = new Option<bool>("--read-only", "-r") { Description = "Refuse writes" };
        var description = new Option<string?>("--description", "-D") { Description = "Description shown to clients" };
        var command = new Command("add", "Export a device") { device, type, name, readOnly, description };
        command.SetAction(DaemonCall.Action(async (parse, client, ct) =>
        {
            var info = await client.CallAsync("export.add", new JsonObject
            {
                ["device"] = parse.GetValue(device),
                ["type"] = parse.GetValue(type),
                ["name"] = parse.GetValue(name),
                ["read-only"] = parse.GetValue(readOnly),
                ["description"] = parse.GetValue(description),
            }, ProtocolJsonContext.Default.ExportInfo, ct).ConfigureAwait(false);
            if (ClientOptions.Json(parse))
            {
                Printer.Json(info, ProtocolJsonContext.Default.ExportInfo);
            }
            else
            {
                Printer.Line($"exported device {info.Device} as {info.Type} export '{info.Name}' ({Printer.Mode(info.ReadOnly)}){(info.Uri is null ? "" : ": " + info.Uri)}");
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
            var table = new TextTable("NAME", "DEVICE", "TYPE", "MODE", "CLIENTS", "URI").Right(4);
            foreach (var e in exports)
            {
                table.Add(e.Name, e.Device, e.Type, Printer.Mode(e.ReadOnly), e.Clients.ToString(System.Globalization.CultureInfo.InvariantCulture), e.Uri ?? "-");
            }
            Printer.Line(table.Count == 0 ? "no exports" : table.ToString());
            return ExitCodes.Success;
        }));
        return command;
    }
}
