using System.CommandLine;
using Blockshot.Core;
using Blockshot.Qcow2;

namespace Blockshot.Cli.Commands.Image;

/// <summary>
/// <c>blockshot image convert</c>: copy an image into a new (or, with <c>-n</c>, an existing) image of
/// any format, or to or from an NBD export, several requests at a time, skipping holes and zeros.
/// </summary>
internal static class ConvertCommand
{
    public static Command Create()
    {
        var source = ImageArgs.WithPathCheck(new Argument<string>("SOURCE") { Description = "Source image file, or nbd+unix:///EXPORT?socket=PATH / nbd://HOST[:PORT]/EXPORT" });
        var target = ImageArgs.WithPathCheck(new Argument<string>("TARGET") { Description = "Target image file (created unless -n), or an NBD URI" });
        var format = ImageArgs.Format("--format", "-f", "Source format: raw or qcow2 (detected when omitted)");
        var outFormat = ImageArgs.Format("--output-format", "-O", "Target format: raw or qcow2 (default raw)");
        var options = ImageArgs.FormatOptions("Target creation options (as for create; compression_type=zstd picks zstd for -c)");
        var compress = new Option<bool>("--compress", "-c") { Description = "Write compressed clusters (qcow2 target)" };
        var progress = ImageArgs.Progress();
        var quiet = ImageArgs.Quiet();
        var noCreate = new Option<bool>("--no-create", "-n") { Description = "Do not create the target; write into the existing one" };
        var forceShare = ImageArgs.ForceShare();
        var parallel = new Option<int>("--parallel", "-m") { Description = "Requests in flight (default 8)", DefaultValueFactory = _ => 8 };
        var outOfOrder = new Option<bool>("--out-of-order", "-W") { Description = "Accepted for compatibility: writes are always issued out of order" };
        var sparse = new Option<string?>("--sparse-size", "-S") { Description = "Zero runs in data at least this long are not written (default 4K; 0 writes everything)" };
        var cache = new Option<string>("--cache", "-t") { Description = "Target cache mode: unsafe (default, no flush, as the reference tool) or writeback (flush at the end)", DefaultValueFactory = _ => "unsafe" };
        cache.AcceptOnlyFromAmong("unsafe", "writeback", "writethrough", "directsync", "none");
        var snapshot = new Option<string?>("--snapshot", "-l") { Description = "Convert this internal snapshot (NAME, ID, snapshot.name=NAME or snapshot.id=ID) of a qcow2 source" };
        var bitmaps = new Option<bool>("--bitmaps") { Description = "Copy the persistent bitmaps too (qcow2 to qcow2)" };
        var skipBroken = new Option<bool>("--skip-broken-bitmaps") { Description = "With --bitmaps, leave out inconsistent bitmaps instead of failing" };
        var targetIsZero = new Option<bool>("--target-is-zero") { Description = "With -n: the target already reads as zeros, so zero runs are not written" };
        var offload = new Option<bool>("--copy-offload", "-C")
        {
            Description = "Copy data file to file inside the kernel (copy_file_range; block sharing where the file system has it) where both ends are files",
        };
        var command = new Command("convert", "Copy an image to another format or place (files or NBD exports), in parallel, skipping holes")
        {
            source, target, format, outFormat, options, compress, progress, quiet, noCreate, forceShare, parallel,
            outOfOrder, sparse, cache, snapshot, bitmaps, skipBroken, targetIsZero, offload,
        };
        parallel.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() is < 1 or > 64)
            {
                r.AddError("-m must be between 1 and 64");
            }
        });
        command.SetAction(ImageErrors.Guard(async (parse, ct) =>
        {
            var request = new ConvertRequest(
                parse.GetValue(source)!, parse.GetValue(target)!, parse.GetValue(format), parse.GetValue(outFormat),
                OptionList.Parse(parse.GetValue(options)), parse.GetValue(compress),
                parse.GetValue(progress) && !parse.GetValue(quiet), parse.GetValue(noCreate), !parse.GetValue(forceShare),
                parse.GetValue(parallel), ParseSparse(parse.GetValue(sparse)), parse.GetValue(cache) != "unsafe",
                parse.GetValue(snapshot), parse.GetValue(bitmaps), parse.GetValue(skipBroken), parse.GetValue(targetIsZero),
                parse.GetValue(offload));
            await RunAsync(request, ct).ConfigureAwait(false);
            return ExitCodes.Success;
        }));
        return command;
    }

    private static int ParseSparse(string? text)
    {
        if (text is null)
        {
            return 4096;
        }
        if (!SizeText.TryParse(text, out var bytes) || bytes > 1 << 30 || (bytes != 0 && bytes % 512 != 0))
        {
            throw new CliException($"Invalid buffer size for sparse output specified: '{text}' (a multiple of 512, or 0)", ExitCodes.Usage);
        }
        return (int)bytes;
    }

    /// <summary>Everything the command line asked for.</summary>
    private sealed record ConvertRequest(
        string Source, string Target, string? Format, string? OutFormat, OptionList Options, bool Compress, bool Progress,
        bool NoCreate, bool Locking, int Parallel, int MinSparse, bool Flush, string? Snapshot, bool Bitmaps,
        bool SkipBrokenBitmaps, bool TargetIsZero, bool CopyOffload);

    private static async Task RunAsync(ConvertRequest r, CancellationToken ct)
    {
        var outFormat = r.OutFormat ?? (Endpoints.IsNbd(r.Target) ? "raw" : "raw");
        if (r.Compress && (outFormat != "qcow2" || Endpoints.IsNbd(r.Target)))
        {
            throw new CliException("Compression not supported for this file format (-c needs -O qcow2)", ExitCodes.Failure);
        }
        if (r.Bitmaps && (outFormat != "qcow2" || Endpoints.IsNbd(r.Target)))
        {
            throw new CliException("--bitmaps needs a qcow2 target file", ExitCodes.Failure);
        }
        var (src, srcFormat) = await OpenSourceAsync(r).ConfigureAwait(false);
        await using (src)
        {
            if (r.Bitmaps && src is not Qcow2Node)
            {
                throw new CliException("--bitmaps needs a qcow2 source file", ExitCodes.Failure);
            }
            var (dst, fresh) = await OpenTargetAsync(r, outFormat, src.Size).ConfigureAwait(false);
            await using (dst)
            {
                if (dst.Size < src.Size)
                {
                    throw new CliException($"{r.Target} ({dst.Size} bytes) is smaller than {r.Source} ({src.Size} bytes)", ExitCodes.Failure);
                }
                var settings = new ConvertSettings
                {
                    Parallel = r.Parallel,
                    MinSparse = r.MinSparse,
                    UseExtents = r.MinSparse > 0,
                    TargetIsZero = fresh || r.TargetIsZero,
                    Compress = r.Compress,
                    CopyOffload = r.CopyOffload,
                    // An NBD server may keep writes in its own cache until told: always flush it.
                    Flush = r.Flush || Endpoints.IsNbd(r.Target),
                    ChunkBytes = dst is Qcow2Node q ? Math.Max(2 << 20, q.ClusterSize) : 2 << 20,
                };
                var shown = ProgressLine.Start(r.Progress, src.Size);
                await new Converter(src, dst, settings, shown).RunAsync(ct).ConfigureAwait(false);
                if (r.Bitmaps)
                {
                    await CopyBitmapsAsync((Qcow2Node)src, (Qcow2Node)dst, r.SkipBrokenBitmaps).ConfigureAwait(false);
                }
                shown?.Finish();
            }
        }
        _ = srcFormat;
    }

    private static async Task<(BlockNode Node, string Format)> OpenSourceAsync(ConvertRequest r)
    {
        if (r.Snapshot is null)
        {
            return await Endpoints.OpenSourceAsync(r.Source, r.Format, r.Locking).ConfigureAwait(false);
        }
        var name = r.Snapshot;
        foreach (var prefix in (string[])["snapshot.name=", "snapshot.id="])
        {
            if (name.StartsWith(prefix, StringComparison.Ordinal))
            {
                name = name[prefix.Length..];
            }
        }
        if (Endpoints.IsNbd(r.Source) || (r.Format ?? ImageOpener.Probe(r.Source)) != "qcow2")
        {
            throw new CliException("-l needs a qcow2 source file (only qcow2 has internal snapshots)", ExitCodes.Failure);
        }
        try
        {
            var node = await Qcow2Node.OpenAsync(r.Source, new Qcow2OpenOptions { ReadOnly = true, Snapshot = name, Locking = r.Locking }).ConfigureAwait(false);
            return (node, "qcow2");
        }
        catch (BlockException e)
        {
            throw new CliException($"Failed to load snapshot '{name}': {ImageErrors.Strip(e.Message)}", ExitCodes.Failure, e);
        }
    }

    /// <summary>Creates (unless -n) and opens the target; says whether it is fresh (reads as zeros).</summary>
    private static async Task<(BlockNode Node, bool Fresh)> OpenTargetAsync(ConvertRequest r, string format, long size)
    {
        if (Endpoints.IsNbd(r.Target))
        {
            r.Options.RejectUnknown("nbd");
            return (await Endpoints.ConnectAsync(r.Target, format).ConfigureAwait(false), false);
        }
        var fresh = false;
        if (!r.NoCreate)
        {
            if (format == "qcow2")
            {
                var create = CreateCommand.Qcow2Options(r.Options, r.Options.Get("backing_file"), r.Options.Get("backing_fmt"));
                r.Options.RejectUnknown("qcow2");
                if (create.BackingFile is not null)
                {
                    throw new CliException("a backing file for the convert target is not supported (convert, then rebase -u)", ExitCodes.Usage);
                }
                await Qcow2Image.CreateAsync(r.Target, size, create with { NoFlush = !r.Flush }).ConfigureAwait(false);
            }
            else
            {
                var prealloc = r.Options.Get("preallocation") ?? "off";
                r.Options.RejectUnknown("raw");
                await CreateCommand.CreateRawAsync(r.Target, size, prealloc).ConfigureAwait(false);
            }
            fresh = true;
        }
        else if (!r.Options.IsEmpty)
        {
            throw new CliException("-o has no effect with -n (the target is not created)", ExitCodes.Usage);
        }
        if (format == "qcow2")
        {
            try
            {
                var node = await Qcow2Node.OpenAsync(r.Target, new Qcow2OpenOptions { OpenBacking = !fresh, NoFlush = !r.Flush }).ConfigureAwait(false);
                return (node, fresh);
            }
            catch (BlockException e)
            {
                throw ImageOpener.Translate(r.Target, e)!;
            }
        }
        var opened = await ImageOpener.OpenAsync(r.Target, format, readOnly: false, direct: false, locking: true).ConfigureAwait(false);
        if (opened.Format != format)
        {
            await opened.Node.DisposeAsync().ConfigureAwait(false);
            throw new CliException($"{r.Target} is {opened.Format}, not {format}", ExitCodes.BadImage);
        }
        return (opened.Node, fresh);
    }

    /// <summary>Copies every persistent bitmap (name, granularity, enabled state and bits).</summary>
    private static async Task CopyBitmapsAsync(Qcow2Node source, Qcow2Node target, bool skipBroken)
    {
        foreach (var b in source.Bitmaps)
        {
            if (b.Inconsistent)
            {
                if (skipBroken)
                {
                    continue;
                }
                throw new CliException($"Cannot copy inconsistent bitmap '{b.Name}' (try --skip-broken-bitmaps, or remove it from the source)", ExitCodes.Failure);
            }
            await target.AddBitmapAsync(b.Name, b.Granularity, b.Enabled).ConfigureAwait(false);
            var dirty = await BitmapCommand.DirtyRangesAsync(source, b.Name).ConfigureAwait(false);
            if (dirty.Count > 0)
            {
                await target.MarkBitmapDirtyAsync(b.Name, dirty).ConfigureAwait(false);
            }
        }
    }

}
