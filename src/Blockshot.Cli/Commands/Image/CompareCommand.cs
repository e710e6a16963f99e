using System.CommandLine;
using Blockshot.Core;
using Blockshot.Core.Buffers;
using Blockshot.Core.Extents;

namespace Blockshot.Cli.Commands.Image;

/// <summary>
/// <c>blockshot image compare</c>: do two images read the same? Exit codes as the reference tool's:
/// 0 identical, 1 different, 2 an image could not be opened, 3 allocation could not be queried, 4 a read
/// failed. Images of different sizes are the same when the larger one reads as zeros past the smaller
/// one's end, unless <c>-s</c> (strict), which also requires the same allocation.
/// </summary>
internal static class CompareCommand
{
    private const int Chunk = 1 << 20;
    private const int Window = 8;

    /// <summary>The images differ.</summary>
    public const int Different = 1;

    /// <summary>An image could not be opened.</summary>
    public const int OpenFailed = 2;

    /// <summary>Allocation could not be queried.</summary>
    public const int StatusFailed = 3;

    /// <summary>A read failed.</summary>
    public const int ReadFailed = 4;

    public static Command Create()
    {
        var first = ImageArgs.File("FILE1", "First image");
        var second = ImageArgs.File("FILE2", "Second image");
        var format1 = ImageArgs.Format("--format", "-f", "Format of FILE1: raw or qcow2 (detected when omitted)");
        var format2 = ImageArgs.Format("--second-format", "-F", "Format of FILE2: raw or qcow2 (detected when omitted)");
        var strict = new Option<bool>("--strict", "-s") { Description = "Also fail on a size or allocation difference" };
        var progress = ImageArgs.Progress();
        var quiet = ImageArgs.Quiet();
        var forceShare = ImageArgs.ForceShare();
        var command = new Command("compare", "Compare the contents of two images; exit 0 identical, 1 different, 2 open error, 3 allocation error, 4 read error")
        {
            first, second, format1, format2, strict, progress, quiet, forceShare,
        };
        command.SetAction(CommandRunner.Guard(async (parse, _) =>
        {
            var quietly = parse.GetValue(quiet);
            var locking = !parse.GetValue(forceShare);
            var a = await OpenOrReportAsync(parse.GetValue(first)!, parse.GetValue(format1), locking).ConfigureAwait(false);
            if (a is null)
            {
                return OpenFailed;
            }
            await using (a)
            {
                var b = await OpenOrReportAsync(parse.GetValue(second)!, parse.GetValue(format2), locking).ConfigureAwait(false);
                if (b is null)
                {
                    return OpenFailed;
                }
                await using (b)
                {
                    var comparer = new Comparer(a, b, parse.GetValue(strict), quietly, ProgressLine.Start(parse.GetValue(progress) && !quietly, Math.Max(a.Size, b.Size)));
                    var (code, message) = await comparer.RunAsync().ConfigureAwait(false);
                    comparer.Progress?.Finish();
                    if (message is not null && (!quietly || code > Different))
                    {
                        await (code > Different ? Console.Error : Console.Out).WriteLineAsync(message).ConfigureAwait(false);
                    }
                    return code;
                }
            }
        }));
        return command;
    }

    private static async Task<BlockNode?> OpenOrReportAsync(string path, string? format, bool locking)
    {
        try
        {
            return (await ImageOpener.OpenAsync(path, format, readOnly: true, direct: false, locking).ConfigureAwait(false)).Node;
        }
        catch (CliException e)
        {
            await Console.Error.WriteLineAsync($"blockshot: Could not open '{path}': {e.Message}").ConfigureAwait(false);
            return null;
        }
    }

    /// <summary>The comparison itself: windows of chunks in parallel, the first difference reported.</summary>
    private sealed class Comparer(BlockNode a, BlockNode b, bool strict, bool quiet, ProgressLine? progress)
    {
        public ProgressLine? Progress => progress;

        public async Task<(int Code, string? Message)> RunAsync()
        {
            if (a.Size != b.Size)
            {
                if (strict)
                {
                    return (Different, "Strict mode: Image size mismatch!");
                }
                if (!quiet)
                {
                    await Console.Out.WriteLineAsync("Warning: Image size mismatch!").ConfigureAwait(false);
                }
            }
            var end = Math.Max(a.Size, b.Size);
            for (long window = 0; window < end; window += (long)Chunk * Window)
            {
                var tasks = new List<Task<(int Code, string? Message)>>();
                for (var i = 0; i < Window; i++)
                {
                    var start = window + ((long)i * Chunk);
                    if (start >= end)
                    {
                        break;
                    }
                    tasks.Add(CompareChunkAsync(start, (int)Math.Min(Chunk, end - start)));
                }
                var results = await Task.WhenAll(tasks).ConfigureAwait(false);
                foreach (var r in results)
                {
                    if (r.Code != 0)
                    {
                        return r;
                    }
                }
                progress?.Add(Math.Min((long)Chunk * Window, end - window));
            }
            return (0, "Images are identical.");
        }

        private async Task<(int Code, string? Message)> CompareChunkAsync(long start, int length)
        {
            var inA = (int)Math.Clamp(a.Size - start, 0, length);
            var inB = (int)Math.Clamp(b.Size - start, 0, length);
            bool zeroA, zeroB;
            uint allocA, allocB;
            try
            {
                (zeroA, allocA) = await StatusAsync(a, start, inA).ConfigureAwait(false);
                (zeroB, allocB) = await StatusAsync(b, start, inB).ConfigureAwait(false);
            }
            catch (BlockException e)
            {
                return (StatusFailed, $"blockshot: error while reading block status at offset {start}: {ImageErrors.Strip(e.Message)}");
            }
            if (strict && allocA != allocB)
            {
                return (Different, $"Strict mode: Offset {start} block status mismatch!");
            }
            if (zeroA && zeroB)
            {
                return (0, null);
            }
            using var bufA = BufferPool.Shared.Rent(length);
            using var bufB = BufferPool.Shared.Rent(length);
            var x = bufA.Memory[..length];
            var y = bufB.Memory[..length];
            try
            {
                await ReadAsync(a, start, x, inA, zeroA).ConfigureAwait(false);
                await ReadAsync(b, start, y, inB, zeroB).ConfigureAwait(false);
            }
            catch (BlockException e)
            {
                return (ReadFailed, $"blockshot: error while reading offset {start}: {ImageErrors.Strip(e.Message)}");
            }
            var diff = x.Span.CommonPrefixLength(y.Span);
            return diff >= length ? (0, null) : (Different, $"Content mismatch at offset {start + (diff & ~511)}!");
        }

        /// <summary>Whether <c>[start, start + length)</c> reads as zeros, and a digest of its allocation (0 none, 1 some, 2 all).</summary>
        private static async Task<(bool Zero, uint Allocated)> StatusAsync(BlockNode node, long start, int length)
        {
            if (length == 0)
            {
                return (true, 0);
            }
            var extents = new ExtentList();
            extents.Reset(start, length);
            await node.GetExtentsAsync(start, length, extents).ConfigureAwait(false);
            var zero = extents.End >= start + length;
            long holes = 0;
            foreach (var e in extents.Items)
            {
                zero &= (e.Flags & AllocationFlags.Zero) != 0;
                if ((e.Flags & AllocationFlags.Hole) != 0)
                {
                    holes += Math.Min(e.End, start + length) - Math.Max(e.Offset, start);
                }
            }
            return (zero, holes == 0 ? 2u : holes >= length ? 0u : 1u);
        }

        private static async Task ReadAsync(BlockNode node, long start, Memory<byte> buffer, int inside, bool zero)
        {
            if (zero)
            {
                buffer.Span.Clear();
                return;
            }
            await node.ReadAsync(start, buffer[..inside]).ConfigureAwait(false);
            buffer.Span[inside..].Clear();
        }
    }
}
