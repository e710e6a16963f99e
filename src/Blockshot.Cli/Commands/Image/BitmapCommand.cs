using System.CommandLine;
using Blockshot.Core.Extents;
using Blockshot.Qcow2;

namespace Blockshot.Cli.Commands.Image;

/// <summary>
/// <c>blockshot image bitmap</c>: persistent dirty bitmaps of a qcow2 image. Actions run in the order
/// given, as the reference tool runs them.
/// </summary>
internal static class BitmapCommand
{
    private enum Action
    {
        Add,
        Remove,
        Clear,
        Enable,
        Disable,
        Merge,
    }

    public static Command Create()
    {
        var file = ImageArgs.File();
        var bitmap = new Argument<string>("BITMAP") { Description = "Bitmap name" };
        var add = new Option<bool>("--add") { Description = "Add the bitmap (empty, recording writes)" };
        var remove = new Option<bool>("--remove") { Description = "Remove the bitmap" };
        var clear = new Option<bool>("--clear") { Description = "Clear every bit" };
        var enable = new Option<bool>("--enable") { Description = "Record writes" };
        var disable = new Option<bool>("--disable") { Description = "Stop recording writes" };
        var merge = new Option<string[]>("--merge") { Description = "Add the bits of bitmap SOURCE (of this image, or of -b FILE) (repeatable)" };
        var granularity = new Option<string?>("--granularity", "-g") { Description = "Granularity of a bitmap --add creates (default: the cluster size, 4K to 64K)" };
        var source = new Option<string?>("--source", "-b") { Description = "Image holding the --merge source bitmaps" };
        var sourceFormat = ImageArgs.Format("--source-format", "-F", "Format of the -b image (qcow2)");
        var format = ImageArgs.Format();
        var command = new Command("bitmap", "Add, remove, clear, enable, disable or merge persistent dirty bitmaps (qcow2)")
        {
            file, bitmap, add, remove, clear, enable, disable, merge, granularity, source, sourceFormat, format,
        };
        command.Validators.Add(result =>
        {
            if (!result.GetValue(add) && !result.GetValue(remove) && !result.GetValue(clear) && !result.GetValue(enable)
                && !result.GetValue(disable) && (result.GetValue(merge) ?? []).Length == 0)
            {
                result.AddError("Need at least one action (--add, --remove, --clear, --enable, --disable or --merge SOURCE)");
            }
            if (result.GetValue(granularity) is not null && !result.GetValue(add))
            {
                result.AddError("-g only goes with --add");
            }
            if (result.GetValue(source) is not null && (result.GetValue(merge) ?? []).Length == 0)
            {
                result.AddError("-b only goes with --merge");
            }
        });
        command.SetAction(ImageErrors.Guard(async (parse, _) =>
        {
            var path = parse.GetValue(file)!;
            var name = parse.GetValue(bitmap)!;
            long gran = 0;
            if (parse.GetValue(granularity) is { } g && !SizeText.TryParse(g, out gran))
            {
                throw new CliException($"Invalid granularity '{g}'", ExitCodes.Usage);
            }
            var fmt = parse.GetValue(format) ?? ImageOpener.Probe(path);
            if (fmt != "qcow2")
            {
                throw new CliException($"{path}: {fmt} images have no persistent bitmaps (use qcow2)", ExitCodes.Failure);
            }
            var actions = Ordered(parse);
            var merges = new Queue<string>(parse.GetValue(merge) ?? []);
            var opened = await ImageOpener.OpenAsync(path, fmt, readOnly: false, direct: false, locking: true, openBacking: false).ConfigureAwait(false);
            await using var node = (Qcow2Node)opened.Node;
            foreach (var action in actions)
            {
                try
                {
                    switch (action)
                    {
                        case Action.Add:
                            await node.AddBitmapAsync(name, gran, enabled: true).ConfigureAwait(false);
                            break;
                        case Action.Remove:
                            await node.RemoveBitmapAsync(name).ConfigureAwait(false);
                            break;
                        case Action.Clear:
                            await node.ClearBitmapAsync(name).ConfigureAwait(false);
                            break;
                        case Action.Enable:
                            await node.SetBitmapEnabledAsync(name, true).ConfigureAwait(false);
                            break;
                        case Action.Disable:
                            await node.SetBitmapEnabledAsync(name, false).ConfigureAwait(false);
                            break;
                        default:
                            await MergeAsync(node, name, merges.Dequeue(), parse.GetValue(source), parse.GetValue(sourceFormat)).ConfigureAwait(false);
                            break;
                    }
                }
                catch (Core.BlockException e)
                {
                    throw new CliException($"{action.ToString().ToLowerInvariant()} of bitmap '{name}' failed: {ImageErrors.Strip(e.Message)}", ExitCodes.Failure, e);
                }
            }
            return ExitCodes.Success;
        }));
        return command;
    }

    /// <summary>The actions in command-line order.</summary>
    private static List<Action> Ordered(ParseResult parse)
    {
        var actions = new List<Action>();
        foreach (var token in parse.Tokens)
        {
            if (token.Type != System.CommandLine.Parsing.TokenType.Option)
            {
                continue;
            }
            Action? a = token.Value switch
            {
                "--add" => Action.Add,
                "--remove" => Action.Remove,
                "--clear" => Action.Clear,
                "--enable" => Action.Enable,
                "--disable" => Action.Disable,
                "--merge" => Action.Merge,
                _ => null,
            };
            if (a is { } found)
            {
                actions.Add(found);
            }
        }
        return actions;
    }

    private static async Task MergeAsync(Qcow2Node target, string name, string sourceBitmap, string? sourceFile, string? sourceFormat)
    {
        if (sourceFile is null)
        {
            await target.MergeBitmapsAsync(name, [sourceBitmap]).ConfigureAwait(false);
            return;
        }
        var fmt = sourceFormat ?? ImageOpener.Probe(sourceFile);
        if (fmt != "qcow2")
        {
            throw new CliException($"{sourceFile}: {fmt} images have no persistent bitmaps", ExitCodes.Failure);
        }
        var opened = await ImageOpener.OpenAsync(sourceFile, fmt, readOnly: true, direct: false, locking: true, openBacking: false).ConfigureAwait(false);
        await using var source = (Qcow2Node)opened.Node;
        await target.MarkBitmapDirtyAsync(name, await DirtyRangesAsync(source, sourceBitmap).ConfigureAwait(false)).ConfigureAwait(false);
    }

    /// <summary>The dirty ranges of a bitmap of <paramref name="node"/>.</summary>
    public static async Task<List<(long Offset, long Length)>> DirtyRangesAsync(Qcow2Node node, string bitmap)
    {
        var ranges = new List<(long, long)>();
        var extents = new ExtentList();
        extents.Reset(0, node.Size);
        await node.QueryBitmapAsync(bitmap, 0, node.Size, extents).ConfigureAwait(false);
        foreach (var e in extents.Items)
        {
            if (e.Flags != 0)
            {
                ranges.Add((e.Offset, e.Length));
            }
        }
        return ranges;
    }
}
