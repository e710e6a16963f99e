using System.CommandLine;
using System.Text.Json.Nodes;
using Blockshot.Cli.Client;
using Blockshot.Daemon.Protocol;

namespace Blockshot.Cli.Commands;

/// <summary><c>blockshot device add|remove|list|suspend|resume|reload|resize</c>: the daemon's devices.</summary>
internal static class DeviceCommands
{
    public static Command Create()
    {
        var command = new Command("device", "Add, remove, list, suspend, resume, reload and resize the daemon's devices");
        command.Subcommands.Add(Add());
        command.Subcommands.Add(Remove());
        command.Subcommands.Add(List());
        command.Subcommands.Add(Suspend());
        command.Subcommands.Add(Resume());
        command.Subcommands.Add(Reload());
        command.Subcommands.Add(Resize());
        return command;
    }

    private static Command Add()
    {
        var name = new Argument<string>("NAME") { Description = "Device name" };
        var file = new Argument<string>("FILE") { Description = "Image file or host block device" };
        file.Validators.Add(CliValidation.NotAnOption);
        var format = new Option<string?>("--format", "-f") { Description = "Image format: raw or qcow2 (detected when omitted)" };
        format.AcceptOnlyFromAmong(ImageOpener.Formats);
        var readOnly = new Option<bool>("--read-only", "-r") { Description = "Open read-only" };
        var direct = new Option<bool>("--direct") { Description = "Bypass the host page cache (O_DIRECT)" };
        var forceShare = new Option<bool>("--force-share", "-U") { Description = "Do not lock the image against other writers" };
        var track = new Option<bool>("--track") { Description = "Attach changed-block tracking (map kept in FILE.cbt)" };
        var trackBlockSize = new Option<string?>("--track-block-size") { Description = "Tracking block size (default 64K)" };
        var trackSidecar = new Option<string?>("--track-sidecar") { Description = "The tracking map's file ('none': memory only)" };
        var trackStore = new Option<string?>("--track-store") { Description = "Also keep the generation's changes in the image: qcow2-bitmap[:NAME] (default name blockshot-cbt)" };
        var command = new Command("add", "Add a device from an image file or host block device") { name, file, format, readOnly, direct, forceShare, track, trackBlockSize, trackSidecar, trackStore };
        command.SetAction(DaemonCall.Action(async (parse, client, ct) =>
        {
            var info = await client.CallAsync("device.add", new JsonObject
            {
                ["name"] = parse.GetValue(name),
                ["file"] = Path.GetFullPath(parse.GetValue(file)!),
                ["format"] = parse.GetValue(format),
                ["read-only"] = parse.GetValue(readOnly),
                ["direct"] = parse.GetValue(direct),
                ["locking"] = !parse.GetValue(forceShare),
                ["track"] = parse.GetValue(track) || parse.GetValue(trackBlockSize) is not null || parse.GetValue(trackSidecar) is not null || parse.GetValue(trackStore) is not null,
                ["track-block-size"] = parse.GetValue(trackBlockSize) is { } b ? (SizeText.TryParse(b, out var bytes) ? bytes : throw new CliException($"--track-block-size '{b}' is not a size", ExitCodes.Usage)) : null,
                ["track-sidecar"] = parse.GetValue(trackSidecar) is { } s ? (s == "none" ? s : Path.GetFullPath(s)) : null,
                ["track-store"] = parse.GetValue(trackStore),
            }, ProtocolJsonContext.Default.DeviceInfo, ct).ConfigureAwait(false);
            if (ClientOptions.Json(parse))
            {
                Printer.Json(info, ProtocolJsonContext.Default.DeviceInfo);
            }
            else
            {
                Printer.Line($"added device {info.Name}: {info.File} ({info.Format}, {SizeText.Format(info.Size)}, {Printer.Mode(info.ReadOnly)})");
            }
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Remove()
    {
        var name = new Argument<string>("NAME") { Description = "Device name" };
        var force = new Option<bool>("--force") { Description = "Remove its exports and cancel its jobs first" };
        var command = new Command("remove", "Remove a device (refused while exported or used by a job, unless --force)") { name, force };
        command.SetAction(DaemonCall.Action(async (parse, client, ct) =>
        {
            var result = await client.CallAsync("device.remove", new JsonObject { ["name"] = parse.GetValue(name), ["force"] = parse.GetValue(force) }, ct)
                .ConfigureAwait(false);
            Say(parse, result, $"removed device {parse.GetValue(name)}");
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command List()
    {
        var command = new Command("list", "List devices with size, format, filters and exports");
        command.SetAction(DaemonCall.Action(async (parse, client, ct) =>
        {
            var devices = await client.CallAsync("device.list", null, ProtocolJsonContext.Default.ListDeviceInfo, ct).ConfigureAwait(false);
            if (ClientOptions.Json(parse))
            {
                Printer.Json(devices, ProtocolJsonContext.Default.ListDeviceInfo);
                return ExitCodes.Success;
            }
            var table = new TextTable("NAME", "SIZE", "FORMAT", "MODE", "STATE", "FILTERS", "EXPORTS", "FILE").Right(1);
            foreach (var d in devices)
            {
                var state = d.Error is not null ? "failed" : d.Suspended ? "suspended" : "running";
                table.Add(d.Name, SizeText.Format(d.Size), d.Format, Printer.Mode(d.ReadOnly), state,
                    d.Filters.Count == 0 ? "-" : string.Join(",", d.Filters.Select(f => f.Name)),
                    d.Exports.Count == 0 ? "-" : string.Join(",", d.Exports), d.File);
            }
            Printer.Line(table.Count == 0 ? "no devices" : table.ToString());
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Suspend()
    {
        var name = new Argument<string>("NAME") { Description = "Device name" };
        var timeout = new Option<int>("--timeout") { Description = "Milliseconds requests in flight may take to drain", DefaultValueFactory = _ => 10000 };
        var hold = new Option<int?>("--hold") { Description = "Resume by itself after this many milliseconds" };
        var command = new Command("suspend", "Drain requests in flight and hold new ones until 'device resume'") { name, timeout, hold };
        command.SetAction(DaemonCall.Action(async (parse, client, ct) =>
        {
            var args = new JsonObject { ["name"] = parse.GetValue(name), ["timeout-ms"] = parse.GetValue(timeout) };
            if (parse.GetValue(hold) is { } ms)
            {
                args["hold-ms"] = ms;
            }
            var info = await client.CallAsync("device.suspend", args, ct).ConfigureAwait(false);
            Say(parse, info, $"suspended device {parse.GetValue(name)}: requests are held until 'blockshot device resume {parse.GetValue(name)}'");
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Resume()
    {
        var name = new Argument<string>("NAME") { Description = "Device name" };
        var command = new Command("resume", "Release a suspended device") { name };
        command.SetAction(DaemonCall.Action(async (parse, client, ct) =>
        {
            var info = await client.CallAsync("device.resume", new JsonObject { ["name"] = parse.GetValue(name) }, ct).ConfigureAwait(false);
            Say(parse, info, $"resumed device {parse.GetValue(name)}");
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Reload()
    {
        var name = new Argument<string>("NAME") { Description = "Device name" };
        var file = new Option<string?>("--file") { Description = "Open this image (of the same size) instead of the current one" };
        var format = new Option<string?>("--format", "-f") { Description = "Image format: raw or qcow2" };
        format.AcceptOnlyFromAmong(ImageOpener.Formats);
        var timeout = new Option<int>("--timeout") { Description = "Milliseconds requests in flight may take to drain", DefaultValueFactory = _ => 10000 };
        var command = new Command("reload", "Reopen a device's image and swap it in under its filters; clients stay connected") { name, file, format, timeout };
        command.SetAction(DaemonCall.Action(async (parse, client, ct) =>
        {
            var args = new JsonObject { ["name"] = parse.GetValue(name), ["timeout-ms"] = parse.GetValue(timeout) };
            if (parse.GetValue(file) is { } f)
            {
                args["file"] = Path.GetFullPath(f);
            }
            if (parse.GetValue(format) is { } fmt)
            {
                args["format"] = fmt;
            }
            var info = await client.CallAsync("device.reload", args, ProtocolJsonContext.Default.DeviceInfo, ct).ConfigureAwait(false);
            if (ClientOptions.Json(parse))
            {
                Printer.Json(info, ProtocolJsonContext.Default.DeviceInfo);
            }
            else
            {
                Printer.Line($"reloaded device {info.Name}: {info.Stack}");
            }
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Resize()
    {
        var name = new Argument<string>("NAME") { Description = "Device name" };
        var size = new Argument<string>("SIZE") { Description = "The new size (bytes, or with a binary suffix: 64M, 2G)" };
        var timeout = new Option<int>("--timeout") { Description = "Milliseconds requests in flight may take to drain", DefaultValueFactory = _ => 10000 };
        var command = new Command("resize", "Grow or shrink a device's image (raw file or qcow2); change tracking starts a new generation") { name, size, timeout };
        command.SetAction(DaemonCall.Action(async (parse, client, ct) =>
        {
            var text = parse.GetValue(size)!;
            var bytes = SizeText.TryParse(text, out var b) ? b : throw new CliException($"SIZE '{text}' is not a size", ExitCodes.Usage);
            var info = await client.CallAsync("device.resize", new JsonObject
            {
                ["name"] = parse.GetValue(name),
                ["size"] = bytes,
                ["timeout-ms"] = parse.GetValue(timeout),
            }, ProtocolJsonContext.Default.DeviceInfo, ct).ConfigureAwait(false);
            if (ClientOptions.Json(parse))
            {
                Printer.Json(info, ProtocolJsonContext.Default.DeviceInfo);
            }
            else
            {
                Printer.Line($"resized device {info.Name} to {SizeText.Format(info.Size)}");
            }
            return ExitCodes.Success;
        }));
        return command;
    }

    /// <summary>Prints the daemon's answer as JSON, or <paramref name="text"/>.</summary>
    public static void Say(ParseResult parse, JsonNode? result, string text)
    {
        if (ClientOptions.Json(parse))
        {
            Printer.Json(result);
        }
        else
        {
            Printer.Line(text);
        }
    }
}
