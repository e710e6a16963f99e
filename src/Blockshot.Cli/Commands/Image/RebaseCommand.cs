using System.CommandLine;
using Blockshot.Core;
using Blockshot.Core.Buffers;
using Blockshot.Core.Extents;
using Blockshot.Qcow2;

namespace Blockshot.Cli.Commands.Image;

/// <summary>
/// <c>blockshot image rebase</c>: give a qcow2 image another backing file. Safe mode (the default) first
/// copies into the image every run that would read differently through the new backing file, so the
/// disk's content does not change; <c>-u</c> only rewrites the name.
/// </summary>
internal static class RebaseCommand
{
    private const int Chunk = 1 << 20;

    public static Command Create()
    {
        var file = ImageArgs.File();
        var format = ImageArgs.Format();
        var backing = new Option<string>("--backing", "-b") { Description = "New backing file (relative names are relative to the image's directory); \"\" for none", Required = true };
        var backingFormat = ImageArgs.Format("--backing-format", "-F", "Format of the new backing file: raw or qcow2");
        var unsafeMode = new Option<bool>("--unsafe", "-u") { Description = "Only change the name; the old and new backing files must read the same" };
        var progress = ImageArgs.Progress();
        var quiet = ImageArgs.Quiet();
        var forceShare = ImageArgs.ForceShare();
        var command = new Command("rebase", "Change the backing file of a qcow2 image, keeping its content (or only the name with -u)")
        {
            file, format, backing, backingFormat, unsafeMode, progress, quiet, forceShare,
        };
        command.SetAction(ImageErrors.Guard(async (parse, _) =>
        {
            var path = parse.GetValue(file)!;
            var newName = parse.GetValue(backing)!;
            var newFormat = parse.GetValue(backingFormat);
            var fmt = parse.GetValue(format) ?? ImageOpener.Probe(path);
            if (fmt != "qcow2")
            {
                throw new CliException($"{path}: {fmt} images have no backing file (use qcow2)", ExitCodes.Failure);
            }
            if (newName.Length > 0 && newFormat is null)
            {
                throw new CliException($"Could not change the backing file to '{newName}': backing format must be specified (-F)", ExitCodes.Failure);
            }
            var locking = !parse.GetValue(forceShare);
            if (parse.GetValue(unsafeMode))
            {
                var opened = await ImageOpener.OpenAsync(path, fmt, readOnly: false, direct: false, locking: true, openBacking: false).ConfigureAwait(false);
                await using var image = (Qcow2Node)opened.Node;
                await image.ChangeBackingFileAsync(newName.Length == 0 ? null : newName, newName.Length == 0 ? null : newFormat).ConfigureAwait(false);
                return ExitCodes.Success;
            }
            var top = (Qcow2Node)(await ImageOpener.OpenAsync(path, fmt, readOnly: false, direct: false, locking: true).ConfigureAwait(false)).Node;
            await using (top)
            {
                BlockNode? next = null;
                if (newName.Length > 0)
                {
                    var dir = Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".";
                    var resolved = Path.IsPathRooted(newName) ? newName : Path.Combine(dir, newName);
                    try
                    {
                        next = (await ImageOpener.OpenAsync(resolved, newFormat, readOnly: true, direct: false, locking).ConfigureAwait(false)).Node;
                    }
                    catch (CliException e)
                    {
                        throw new CliException($"Could not open new backing file '{newName}': {e.Message}", e.ExitCode, e);
                    }
                }
                await using (next)
                {
                    var shown = ProgressLine.Start(parse.GetValue(progress) && !parse.GetValue(quiet), top.Size);
                    await CopyDifferencesAsync(top, next, shown).ConfigureAwait(false);
                    await top.ChangeBackingFileAsync(newName.Length == 0 ? null : newName, newName.Length == 0 ? null : newFormat).ConfigureAwait(false);
                    shown?.Finish();
                }
            }
            return ExitCodes.Success;
        }));
        return command;
    }

    /// <summary>
    /// Writes into <paramref name="top"/> every run it does not hold itself whose content differs between
    /// its current backing chain and <paramref name="next"/> (zeros when null), several chunks at a time.
    /// </summary>
    private static async Task CopyDifferencesAsync(Qcow2Node top, BlockNode? next, ProgressLine? progress)
    {
        var size = top.Size;
        var chunks = (size + Chunk - 1) / Chunk;
        var options = new ParallelOptions { MaxDegreeOfParallelism = 8 };
        await Parallel.ForEachAsync(LongRange(chunks), options, async (index, _) =>
        {
            var start = index * Chunk;
            var length = (int)Math.Min(Chunk, size - start);
            var depth = new ExtentList();
            depth.Reset(start, length);
            await top.GetAllocationDepthAsync(start, length, depth).ConfigureAwait(false);
            for (var i = 0; i < depth.Count; i++)
            {
                var e = depth[i];
                if (e.Flags != 1)
                {
                    await CompareAndCopyAsync(top, next, e.Offset, (int)Math.Min(e.Length, start + length - e.Offset)).ConfigureAwait(false);
                }
            }
            progress?.Add(length);
        }).ConfigureAwait(false);
        await top.FlushAsync().ConfigureAwait(false);
    }

    private static async Task CompareAndCopyAsync(Qcow2Node top, BlockNode? next, long offset, int length)
    {
        using var current = BufferPool.Shared.Rent(length);
        using var other = BufferPool.Shared.Rent(length);
        var mine = current.Memory[..length];
        var theirs = other.Memory[..length];
        await top.ReadAsync(offset, mine).ConfigureAwait(false);
        var inside = next is null ? 0 : (int)Math.Clamp(next.Size - offset, 0, length);
        if (inside > 0)
        {
            await next!.ReadAsync(offset, theirs[..inside]).ConfigureAwait(false);
        }
        theirs.Span[inside..].Clear();
        // Copy only the sectors that differ, in runs, as the reference tool does.
        const int Sector = 512;
        var pos = 0;
        while (pos < length)
        {
            var n = Math.Min(Sector, length - pos);
            if (mine.Span.Slice(pos, n).SequenceEqual(theirs.Span.Slice(pos, n)))
            {
                pos += n;
                continue;
            }
            var runStart = pos;
            while (pos < length)
            {
                n = Math.Min(Sector, length - pos);
                if (mine.Span.Slice(pos, n).SequenceEqual(theirs.Span.Slice(pos, n)))
                {
                    break;
                }
                pos += n;
            }
            await top.WriteAsync(offset + runStart, mine[runStart..pos], IoFlags.None).ConfigureAwait(false);
        }
    }

    private static IEnumerable<long> LongRange(long count)
    {
        for (long i = 0; i < count; i++)
        {
            yield return i;
        }
    }
}
