using System.CommandLine;
using System.Text.Json.Nodes;
using Blockshot.Cli.Client;
using Blockshot.Daemon.Protocol;

namespace Blockshot.Cli.Commands;

/// <summary><c>blockshot filter insert|remove|list|types</c>: filters in a live device's stack.</summary>
internal static class FilterCommands
{
    public static Command Create()
    {
        var command = new Command("filter", "Insert and remove filters (throttle, fault) in a live device's stack");
        command.Subcommands.Add(Insert());
        command.Subcommands.Add(Remove());
        command.Subcommands.Add(List());
        command.Subcommands.Add(Types());
        return command;
    }

    private static Command Insert()
    {
        var device = new Argument<string>("DEVICE") { Description = "Device name" };
        var type = new Argument<string>("FILTER") { Description = "Filter type (see 'blockshot filter types')" };
        var settings = new Option<string[]>("--set") { Description = "A setting, KEY=VALUE (repeatable), e.g. --set bps=50M", AllowMultipleArgumentsPerToken = false };
        settings.Validators.Add(result =>
        {
            foreach (var token in result.Tokens)
            {
                if (!token.Value.Contains('=', StringComparison.Ordinal) || token.Value.StartsWith('='))
                {
                    result.AddError($"--set '{token.Value}': expected KEY=VALUE");
                }
            }
        });
        var name = new Option<string?>("--name") { Description = "Name in the stack (default: the filter type)" };
        var timeout = new Option<int>("--timeout") { Description = "Milliseconds requests in flight may take to drain", DefaultValueFactory = _ => 10000 };
        var command = new Command("insert", "Insert a filter at the top of a device's stack; clients stay connected") { device, type, settings, name, timeout };
        command.SetAction(DaemonCall.Action(async (parse, client, ct) =>
        {
            var values = new JsonObject();
            foreach (var pair in parse.GetValue(settings) ?? [])
            {
                var at = pair.IndexOf('=', StringComparison.Ordinal);
                values[pair[..at].Trim()] = pair[(at + 1)..];
            }
            var info = await client.CallAsync("filter.insert", new JsonObject
            {
                ["device"] = parse.GetValue(device),
                ["type"] = parse.GetValue(type),
                ["name"] = parse.GetValue(name),
                ["settings"] = values,
                ["timeout-ms"] = parse.GetValue(timeout),
            }, ProtocolJsonContext.Default.DeviceInfo, ct).ConfigureAwait(false);
            if (ClientOptions.Json(parse))
            {
                Printer.Json(info, ProtocolJsonContext.Default.DeviceInfo);
            }
            else
            {
                Printer.Line($"inserted {parse.GetValue(name) ?? parse.GetValue(type)} into {info.Name}: {info.Stack}");
            }
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Remove()
    {
        var device = new Argument<string>("DEVICE") { Description = "Device name" };
        var name = new Argument<string>("FILTER") { Description = "Filter name in the stack" };
        var timeout = new Option<int>("--timeout") { Description = "Milliseconds requests in flight may take to drain", DefaultValueFactory = _ => 10000 };
        var command = new Command("remove", "Remove a filter from a device's stack; clients stay connected") { device, name, timeout };
        command.SetAction(DaemonCall.Action(async (parse, client, ct) =>
        {
            var info = await client.CallAsync("filter.remove", new JsonObject
            {
                ["device"] = parse.GetValue(device),
                ["name"] = parse.GetValue(name),
                ["timeout-ms"] = parse.GetValue(timeout),
            }, ProtocolJsonContext.Default.DeviceInfo, ct).ConfigureAwait(false);
            if (ClientOptions.Json(parse))
            {
                Printer.Json(info, ProtocolJsonContext.Default.DeviceInfo);
            }
            else
            {
                Printer.Line($"removed {parse.GetValue(name)} from {info.Name}: {info.Stack}");
            }
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command List()
    {
        var device = new Argument<string>("DEVICE") { Description = "Device name" };
        var command = new Command("list", "List a device's filters with their settings and counters") { device };
        command.SetAction(DaemonCall.Action(async (parse, client, ct) =>
        {
            var info = await client.CallAsync("device.get", new JsonObject { ["name"] = parse.GetValue(device) }, ProtocolJsonContext.Default.DeviceInfo, ct)
                .ConfigureAwait(false);
            if (ClientOptions.Json(parse))
            {
                Printer.Json(new JsonArray([.. info.Filters.Select(f => System.Text.Json.JsonSerializer.SerializeToNode(f, ProtocolJsonContext.Default.FilterInfo))]));
                return ExitCodes.Success;
            }
            var table = new TextTable("NAME", "TYPE", "SETTINGS", "COUNTERS");
            foreach (var f in info.Filters)
            {
                table.Add(f.Name, f.Type, string.Join(" ", f.Settings.Select(s => $"{s.Key}={s.Value}")),
                    string.Join(" ", f.Counters.Select(c => $"{c.Key}={c.Value}")) + (f.Job is null ? "" : $" (job {f.Job})"));
            }
            Printer.Line(table.Count == 0 ? $"{info.Name}: no filters ({info.Stack})" : table.ToString());
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Types()
    {
        var command = new Command("types", "List the filter types and their settings");
        command.SetAction(DaemonCall.Action(async (parse, client, ct) =>
        {
            var types = await client.CallAsync("filter.types", null, ProtocolJsonContext.Default.ListFilterTypeDescription, ct).ConfigureAwait(false);
            if (ClientOptions.Json(parse))
            {
                Printer.Json(types, ProtocolJsonContext.Default.ListFilterTypeDescription);
                return ExitCodes.Success;
            }
            foreach (var t in types)
            {
                Printer.Line($"{t.Type}: {t.Description}");
                foreach (var s in t.Settings)
                {
                    Printer.Line($"  {s.Name,-12} {s.Description} (default {s.Default})");
                }
            }
            return ExitCodes.Success;
        }));
        return command;
    }
}
