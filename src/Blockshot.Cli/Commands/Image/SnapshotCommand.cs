using System.CommandLine;
using System.Globalization;
using System.Text;
using Blockshot.Qcow2;

namespace Blockshot.Cli.Commands.Image;

/// <summary><c>blockshot image snapshot</c>: list, create, apply and delete internal snapshots of a qcow2 image.</summary>
internal static class SnapshotCommand
{
    public static Command Create()
    {
        var file = ImageArgs.File();
        var format = ImageArgs.Format();
        var list = new Option<bool>("--list", "-l") { Description = "List the snapshots" };
        var create = new Option<string?>("--create", "-c") { Description = "Take a snapshot named NAME of the current state" };
        var apply = new Option<string?>("--apply", "-a") { Description = "Revert the image to snapshot NAME (or ID)" };
        var delete = new Option<string?>("--delete", "-d") { Description = "Delete snapshot NAME (or ID)" };
        var forceShare = ImageArgs.ForceShare();
        var quiet = ImageArgs.Quiet();
        var command = new Command("snapshot", "List, create, apply or delete internal snapshots (qcow2)")
        {
            file, format, list, create, apply, delete, forceShare, quiet,
        };
        command.Validators.Add(result =>
        {
            var count = (result.GetValue(list) ? 1 : 0) + (result.GetValue(create) is null ? 0 : 1)
                + (result.GetValue(apply) is null ? 0 : 1) + (result.GetValue(delete) is null ? 0 : 1);
            if (count > 1)
            {
                result.AddError("give only one of -l, -c, -a, -d");
            }
            if (result.GetValue(forceShare) && count == 1 && !result.GetValue(list))
            {
                result.AddError("-U only goes with -l (changing an image needs its locks)");
            }
        });
        command.SetAction(ImageErrors.Guard(async (parse, _) =>
        {
            var path = parse.GetValue(file)!;
            var fmt = parse.GetValue(format) ?? ImageOpener.Probe(path);
            var name = parse.GetValue(create) ?? parse.GetValue(apply) ?? parse.GetValue(delete);
            var listing = name is null;
            if (fmt != "qcow2")
            {
                if (listing)
                {
                    return ExitCodes.Success; // a raw image has no snapshots to list
                }
                throw new CliException($"{path}: {fmt} images have no internal snapshots (use qcow2)", ExitCodes.Failure);
            }
            if (listing)
            {
                var opened = await ImageOpener.OpenAsync(path, fmt, readOnly: true, direct: false, locking: !parse.GetValue(forceShare), openBacking: false).ConfigureAwait(false);
                await using var node = (Qcow2Node)opened.Node;
                if (node.Snapshots.Count > 0 && !parse.GetValue(quiet))
                {
                    Console.Write("Snapshot list:\n" + Table(node.Snapshots));
                }
                return ExitCodes.Success;
            }
            var rw = await ImageOpener.OpenAsync(path, fmt, readOnly: false, direct: false, locking: true, openBacking: false).ConfigureAwait(false);
            await using (var image = (Qcow2Node)rw.Node)
            {
                try
                {
                    if (parse.GetValue(create) is { } c)
                    {
                        await image.CreateSnapshotAsync(c).ConfigureAwait(false);
                    }
                    else if (parse.GetValue(apply) is { } a)
                    {
                        await image.ApplySnapshotAsync(a).ConfigureAwait(false);
                    }
                    else
                    {
                        await image.DeleteSnapshotAsync(name!).ConfigureAwait(false);
                    }
                }
                catch (Core.BlockException e)
                {
                    var verb = parse.GetValue(create) is not null ? "create" : parse.GetValue(apply) is not null ? "apply" : "delete";
                    throw new CliException($"Could not {verb} snapshot '{name}': {ImageErrors.Strip(e.Message)}", ExitCodes.Failure, e);
                }
            }
            return ExitCodes.Success;
        }));
        return command;
    }

    /// <summary>The snapshot table, columns as the reference tool prints them.</summary>
    public static string Table(IReadOnlyList<Qcow2SnapshotInfo> snapshots)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{"ID",-10}{"TAG",-17}{"VM SIZE",8}{"DATE",20}{"VM CLOCK",13}{"ICOUNT",11}\n");
        foreach (var s in snapshots)
        {
            var date = s.Date.ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
            var secs = s.VmClockNanoseconds / 1_000_000_000;
            var clock = string.Create(CultureInfo.InvariantCulture,
                $"{secs / 3600:00}:{secs / 60 % 60:00}:{secs % 60:00}.{s.VmClockNanoseconds / 1_000_000 % 1000:000}");
            var icount = s.Icount is { } i ? i.ToString(CultureInfo.InvariantCulture) : "";
            sb.Append(CultureInfo.InvariantCulture, $"{s.Id,-9} {s.Name,-16} {HumanSize.Format(s.VmStateSize),8}{date,20}{clock,13}{icount,11}\n");
        }
        return sb.ToString();
    }
}
