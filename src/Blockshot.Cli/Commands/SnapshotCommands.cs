using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Blockshot.Cli.Client;
using Blockshot.Daemon.Protocol;

namespace Blockshot.Cli.Commands;

/// <summary><c>blockshot snapshot create|list|info|destroy|export</c>: live snapshots of the daemon's devices.</summary>
internal static class SnapshotCommands
{
    public static Command Create()
    {
        var command = new Command("snapshot", "Take, list, export and destroy live snapshots of the daemon's devices");
        command.Subcommands.Add(CreateCommand());
        command.Subcommands.Add(List());
        command.Subcommands.Add(Info());
        command.Subcommands.Add(Destroy());
        command.Subcommands.Add(Export());
        return command;
    }

    private static Command CreateCommand()
    {
        var devices = new Option<string[]>("--device", "-d") { Description = "A device of the set (repeatable: one instant for all)", Required = true, AllowMultipleArgumentsPerToken = false };
        var name = new Option<string?>("--name", "-n") { Description = "The set's name (default: snap-TIMESTAMP)" };
        var storage = new Option<string?>("--storage", "-s") { Description = "Where old data goes: memory, file:PATH, dir:PATH (unnamed O_TMPFILE), multi:P1,P2,..., tiered:SIZE,INNER" };
        var chunk = new Option<string?>("--chunk-size") { Description = "Chunk size, a power of two (default 64K)" };
        var initial = new Option<string?>("--initial") { Description = "Storage to start with (default 64M)" };
        var limit = new Option<string?>("--limit") { Description = "The most the storage may hold (default: 1G for memory, else the medium)" };
        var grow = new Option<string?>("--grow-step") { Description = "How much the storage grows at a time (default 64M)" };
        var overflow = new Option<string>("--on-overflow") { Description = "break-snapshot, fail-write or wait[:TIMEOUT[:break-snapshot|fail-write]] (TIMEOUT like 30s or 500ms)", DefaultValueFactory = _ => "break-snapshot" };
        var writable = new Option<bool>("--writable") { Description = "The images accept writes (into the storage, never the device)" };
        var persistent = new Option<bool>("--persistent") { Description = "Survive daemon restarts (file: storage)" };
        var freeze = new Option<string?>("--freeze-hook") { Description = "Shell command run before the take, e.g. 'fsfreeze -f /mnt'" };
        var thaw = new Option<string?>("--thaw-hook") { Description = "Shell command run after the take (always, once the freeze ran)" };
        var hookTimeout = new Option<int>("--hook-timeout") { Description = "Milliseconds each hook may take", DefaultValueFactory = _ => 30000 };
        var command = new Command("create", "Snapshot one or more devices at one instant; they keep running")
        {
            devices, name, storage, chunk, initial, limit, grow, overflow, writable, persistent, freeze, thaw, hookTimeout,
        };
        command.SetAction(DaemonCall.Action(async (parse, client, ct) =>
        {
            var args = new JsonObject
            {
                ["devices"] = new JsonArray([.. (parse.GetValue(devices) ?? []).Select(d => JsonValue.Create(d))]),
                ["name"] = parse.GetValue(name),
                ["storage"] = parse.GetValue(storage) is { } s ? AbsoluteStorage(s) : null,
                ["writable"] = parse.GetValue(writable),
                ["persistent"] = parse.GetValue(persistent),
                ["freeze-hook"] = parse.GetValue(freeze),
                ["thaw-hook"] = parse.GetValue(thaw),
                ["hook-timeout-ms"] = parse.GetValue(hookTimeout),
            };
            AddSize(args, "chunk-size", parse.GetValue(chunk));
            AddSize(args, "initial", parse.GetValue(initial));
            AddSize(args, "limit", parse.GetValue(limit));
            AddSize(args, "grow-step", parse.GetValue(grow));
            AddPolicy(args, parse.GetValue(overflow)!);
            var info = await client.CallAsync("snapshot.create", args, ProtocolJsonContext.Default.SnapshotInfo, ct).ConfigureAwait(false);
            if (ClientOptions.Json(parse))
            {
                Printer.Json(info, ProtocolJsonContext.Default.SnapshotInfo);
            }
            else
            {
                Printer.Line($"took snapshot {info.Name} of {string.Join(", ", info.Devices.Select(d => d.Device))}");
            }
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command List()
    {
        var command = new Command("list", "List snapshot sets");
        command.SetAction(DaemonCall.Action(async (parse, client, ct) =>
        {
            var sets = await client.CallAsync("snapshot.list", null, ProtocolJsonContext.Default.ListSnapshotInfo, ct).ConfigureAwait(false);
            if (ClientOptions.Json(parse))
            {
                Printer.Json(sets, ProtocolJsonContext.Default.ListSnapshotInfo);
                return ExitCodes.Success;
            }
            var table = new TextTable("NAME", "DEVICE", "STATE", "CREATED", "STORED", "STORAGE", "EXPORTS").Right(4);
            foreach (var set in sets)
            {
                foreach (var d in set.Devices)
                {
                    table.Add(set.Name, d.Device, d.State, set.Created.ToString("u", CultureInfo.InvariantCulture), SizeText.Format(d.StorageUsed),
                        d.Storage, d.Exports.Count == 0 ? "-" : string.Join(",", d.Exports));
                }
            }
            Printer.Line(table.Count == 0 ? "no snapshots" : table.ToString());
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Info()
    {
        var name = new Argument<string>("SNAPSHOT") { Description = "Snapshot (set) name" };
        var command = new Command("info", "Describe a snapshot set") { name };
        command.SetAction(DaemonCall.Action(async (parse, client, ct) =>
        {
            var info = await client.CallAsync("snapshot.info", new JsonObject { ["name"] = parse.GetValue(name) }, ProtocolJsonContext.Default.SnapshotInfo, ct)
                .ConfigureAwait(false);
            if (ClientOptions.Json(parse))
            {
                Printer.Json(info, ProtocolJsonContext.Default.SnapshotInfo);
                return ExitCodes.Success;
            }
            Printer.Line($"snapshot {info.Name}, taken {info.Created.ToString("u", CultureInfo.InvariantCulture)}{(info.Persistent ? ", persistent" : "")}");
            foreach (var d in info.Devices)
            {
                Printer.Line($"  {d.Device}: #{d.Number} {d.State}{(d.Failure is null ? "" : $" ({d.Failure})")}, {SizeText.Format(d.Size)}, {d.ChunkSize / 1024} KiB chunks, {d.CopiedChunks} copied, on-overflow {d.OnOverflow}{(d.Writable ? ", writable" : "")}");
                Printer.Line($"    storage {d.Storage}: {SizeText.Format(d.StorageUsed)} used of {(d.StorageLimit >= long.MaxValue / 16 ? "unlimited" : SizeText.Format(d.StorageLimit))}; table {SizeText.Format(d.TableBytes)}");
                if (d.CbtGeneration is not null)
                {
                    Printer.Line($"    cbt generation {d.CbtGeneration}: dirty bitmap = changes after period {d.CbtSince} ({d.CbtBitmap}); this snapshot ended period {d.CbtPeriod}");
                }
                if (d.Exports.Count > 0)
                {
                    Printer.Line($"    exported as {string.Join(", ", d.Exports)}");
                }
            }
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Destroy()
    {
        var name = new Argument<string>("SNAPSHOT") { Description = "Snapshot (set) name" };
        var device = new Option<string?>("--device", "-d") { Description = "Only this device's snapshot" };
        var force = new Option<bool>("--force") { Description = "Remove its exports first" };
        var command = new Command("destroy", "Destroy a snapshot set (or one device's snapshot); refused while exported unless --force") { name, device, force };
        command.SetAction(DaemonCall.Action(async (parse, client, ct) =>
        {
            var result = await client.CallAsync("snapshot.destroy",
                new JsonObject { ["name"] = parse.GetValue(name), ["device"] = parse.GetValue(device), ["force"] = parse.GetValue(force) }, ct).ConfigureAwait(false);
            DeviceCommands.Say(parse, result, $"destroyed snapshot {parse.GetValue(name)}");
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Export()
    {
        var name = new Argument<string>("SNAPSHOT") { Description = "Snapshot (set) name" };
        var device = new Option<string>("--device", "-d") { Description = "The device whose snapshot to export", Required = true };
        var type = ExportCommands.TypeOption();
        var exportName = new Option<string?>("--name", "-x") { Description = "Export name (default: DEVICE.SNAPSHOT)" };
        var readOnly = new Option<bool>("--read-only", "-r") { Description = "Refuse writes and trims (otherwise NBD trims of a read-only snapshot discard chunks: read-once)" };
        var bitmap = new Option<string?>("--bitmap") { Description = "nbd: name of the dirty bitmap offered as qemu:dirty-bitmap:NAME (default blockshot-cbt)" };
        var path = new Option<string?>("--path", "-p") { Description = "fuse: the regular file to mount the image on (created if missing)" };
        var loop = new Option<bool>("--loop") { Description = "fuse: attach a loop device to the file and print /dev/loopN" };
        var command = new Command("export", "Export a device's snapshot over NBD or FUSE") { name, device, type, exportName, readOnly, bitmap, path, loop };
        command.Validators.Add(result =>
        {
            ExportCommands.CheckFuseOptions(result, type, path, loop);
            if (ExportCommands.IsFuse(result, type) && result.GetValue(bitmap) is not null)
            {
                result.AddError("--bitmap applies to --type nbd only");
            }
        });
        command.SetAction(DaemonCall.Action(async (parse, client, ct) =>
        {
            var info = await client.CallAsync("snapshot.export", new JsonObject
            {
                ["name"] = parse.GetValue(name),
                ["device"] = parse.GetValue(device),
                ["type"] = parse.GetValue(type),
                ["export-name"] = parse.GetValue(exportName),
                ["read-only"] = parse.GetValue(readOnly),
                ["bitmap"] = parse.GetValue(bitmap),
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
                await ExportCommands.SayAsync(info,
                    $"exported snapshot {parse.GetValue(name)} of {info.Device} as {info.Type} export '{info.Name}' ({Printer.Mode(info.ReadOnly)}){(ExportCommands.Where(info) is { } where ? ": " + where : "")}")
                    .ConfigureAwait(false);
            }
            return ExitCodes.Success;
        }));
        return command;
    }

    /// <summary>Makes the paths of a storage spec absolute against the client's directory (the daemon's differs).</summary>
    public static string AbsoluteStorage(string text)
    {
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        if (colon < 0)
        {
            return text;
        }
        var kind = text[..colon];
        var rest = text[(colon + 1)..];
        switch (kind)
        {
            case "file" or "dir":
                return $"{kind}:{Path.GetFullPath(rest)}";
            case "multi":
                return "multi:" + string.Join(',', rest.Split(',').Select(p => p.Length == 0 ? p : Path.GetFullPath(p)));
            case "tiered" when rest.IndexOf(',', StringComparison.Ordinal) is var comma and > 0:
                if (!SizeText.TryParse(rest[..comma], out var ram))
                {
                    throw new CliException($"--storage {text}: '{rest[..comma]}' is not a size", ExitCodes.Usage);
                }
                return $"tiered:{ram.ToString(CultureInfo.InvariantCulture)},{AbsoluteStorage(rest[(comma + 1)..])}";
            default:
                return text;
        }
    }

    private static void AddSize(JsonObject args, string key, string? text)
    {
        if (text is null)
        {
            return;
        }
        if (!SizeText.TryParse(text, out var bytes) || bytes <= 0)
        {
            throw new CliException($"--{key} '{text}' is not a size (e.g. 64K, 512M, 2G)", ExitCodes.Usage);
        }
        args[key] = bytes;
    }

    private static void AddPolicy(JsonObject args, string text)
    {
        var parts = text.Split(':');
        args["on-overflow"] = parts[0];
        if (parts[0] != "wait" && parts.Length > 1)
        {
            throw new CliException($"--on-overflow '{text}': only wait takes a timeout", ExitCodes.Usage);
        }
        if (parts.Length > 1)
        {
            args["wait-timeout-ms"] = Milliseconds(parts[1], text);
        }
        if (parts.Length > 2)
        {
            args["after-wait"] = parts[2];
        }
    }

    private static long Milliseconds(string text, string whole)
    {
        var (number, scale) = text.EndsWith("ms", StringComparison.Ordinal) ? (text[..^2], 1)
            : text.EndsWith('s') ? (text[..^1], 1000)
            : text.EndsWith('m') ? (text[..^1], 60_000)
            : (text, 1000);
        if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || value <= 0)
        {
            throw new CliException($"--on-overflow '{whole}': '{text}' is not a duration (e.g. 30s, 500ms, 2m)", ExitCodes.Usage);
        }
        return (long)Math.Ceiling(value * scale);
    }
}
