using System.CommandLine;
using Blockshot.Core;
using Blockshot.Core.Buffers;
using Blockshot.Core.Extents;
using Blockshot.Drivers;
using Blockshot.Qcow2;

namespace Blockshot.Cli.Commands.Image;

/// <summary>
/// <c>blockshot image commit</c>: write what a qcow2 image (and the images between it and the base) holds
/// into its backing file, or into the base named with <c>-b</c>; then empty the image, unless <c>-d</c> or
/// <c>-b</c> is given, so it reads everything from the backing file again.
/// </summary>
internal static class CommitCommand
{
    private const int Chunk = 2 << 20;

    public static Command Create()
    {
        var file = ImageArgs.File();
        var format = ImageArgs.Format();
        var baseImage = new Option<string?>("--base", "-b") { Description = "Commit into this image of the backing chain (default: the backing file); implies -d" };
        var keep = new Option<bool>("--keep", "-d") { Description = "Do not empty the image after the commit" };
        var progress = ImageArgs.Progress();
        var quiet = ImageArgs.Quiet();
        var command = new Command("commit", "Write an image's changes into its backing file")
        {
            file, format, baseImage, keep, progress, quiet,
        };
        command.SetAction(ImageErrors.Guard(async (parse, _) =>
        {
            var path = parse.GetValue(file)!;
            var fmt = parse.GetValue(format) ?? ImageOpener.Probe(path);
            if (fmt != "qcow2")
            {
                throw new CliException($"{path}: {fmt} images have no backing file to commit into", ExitCodes.Failure);
            }
            var basePath = parse.GetValue(baseImage) is { } b ? Path.GetFullPath(b) : null;
            var empty = basePath is null && !parse.GetValue(keep);
            var chain = new ChainOpener(basePath);
            Qcow2Node top;
            try
            {
                top = await Qcow2Node.OpenAsync(path, new Qcow2OpenOptions { ReadOnly = !empty, BackingOpener = chain.OpenAsync }).ConfigureAwait(false);
            }
            catch (BlockException e)
            {
                throw ImageOpener.Translate(path, e)!;
            }
            await using (top)
            {
                if (top.Backing is null)
                {
                    throw new CliException($"{path}: the image has no backing file to commit into", ExitCodes.Failure);
                }
                if (chain.Base is null)
                {
                    throw new CliException($"'{parse.GetValue(baseImage)}' is not in the backing chain of '{path}'", ExitCodes.Failure);
                }
                var target = chain.Base;
                if (target.Size < top.Size)
                {
                    await target.ResizeAsync(top.Size).ConfigureAwait(false);
                }
                var shown = ProgressLine.Start(parse.GetValue(progress) && !parse.GetValue(quiet), top.Size);
                await CopyAboveBaseAsync(top, target, chain.BaseDepth, shown).ConfigureAwait(false);
                await target.FlushAsync().ConfigureAwait(false);
                if (empty)
                {
                    await top.MakeEmptyAsync().ConfigureAwait(false);
                }
                shown?.Finish();
            }
            if (!parse.GetValue(quiet))
            {
                Console.WriteLine("Image committed.");
            }
            return ExitCodes.Success;
        }));
        return command;
    }

    /// <summary>Copies every run some layer above the base decides (allocation depth 1 to base depth − 1).</summary>
    private static async Task CopyAboveBaseAsync(Qcow2Node top, BlockNode target, int baseDepth, ProgressLine? progress)
    {
        var size = top.Size;
        var chunks = (size + Chunk - 1) / Chunk;
        await Parallel.ForEachAsync(Enumerable.Range(0, (int)chunks), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (index, _) =>
        {
            var start = (long)index * Chunk;
            var end = Math.Min(size, start + Chunk);
            var depth = new ExtentList();
            depth.Reset(start, end - start);
            await top.GetAllocationDepthAsync(start, end - start, depth).ConfigureAwait(false);
            for (var i = 0; i < depth.Count; i++)
            {
                var d = depth[i];
                if (d.Flags >= 1 && d.Flags < baseDepth)
                {
                    await CopyRunAsync(top, target, d.Offset, Math.Min(d.End, end)).ConfigureAwait(false);
                }
            }
            progress?.Add(end - start);
        }).ConfigureAwait(false);
    }

    private static async Task CopyRunAsync(Qcow2Node top, BlockNode target, long pos, long end)
    {
        var extents = new ExtentList();
        while (pos < end)
        {
            extents.Reset(pos, end - pos);
            await top.GetExtentsAsync(pos, end - pos, extents).ConfigureAwait(false);
            for (var i = 0; i < extents.Count; i++)
            {
                var e = extents[i];
                var stop = Math.Min(e.End, end);
                if ((e.Flags & AllocationFlags.Zero) != 0)
                {
                    await target.WriteZeroesAsync(e.Offset, stop - e.Offset, IoFlags.MayTrim).ConfigureAwait(false);
                    continue;
                }
                var length = (int)(stop - e.Offset);
                using var buffer = BufferPool.Shared.Rent(length);
                await top.ReadAsync(e.Offset, buffer.Memory[..length]).ConfigureAwait(false);
                await target.WriteAsync(e.Offset, buffer.Memory[..length], IoFlags.None).ConfigureAwait(false);
            }
            pos = extents.End > pos ? Math.Min(extents.End, end) : end;
        }
    }

    /// <summary>
    /// Opens the backing chain for a commit: the base read-write, everything between read-only. Without a
    /// named base, the base is the first backing file.
    /// </summary>
    private sealed class ChainOpener(string? basePath)
    {
        private int _depth = 1;

        public BlockNode? Base { get; private set; }

        /// <summary>The allocation depth the base has seen from the top (2 for the first backing file).</summary>
        public int BaseDepth { get; private set; }

        public async ValueTask<BlockNode> OpenAsync(string path, string? format)
        {
            var depth = ++_depth;
            var isBase = Base is null && (basePath is null ? depth == 2 : Path.GetFullPath(path) == basePath);
            format ??= ImageOpener.Probe(path);
            BlockNode node = format switch
            {
                "qcow2" => await Qcow2Node.OpenAsync(path, new Qcow2OpenOptions
                {
                    ReadOnly = !isBase,
                    BackingOpener = OpenAsync,
                }).ConfigureAwait(false),
                "raw" => RawFileNode.Open(path, new RawFileOptions { ReadOnly = !isBase }),
                _ => throw new CliException($"{path}: unknown backing format '{format}'", ExitCodes.BadImage),
            };
            if (isBase)
            {
                Base = node;
                BaseDepth = depth;
            }
            return node;
        }
    }
}
