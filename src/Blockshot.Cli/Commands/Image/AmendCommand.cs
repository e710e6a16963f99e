using System.CommandLine;
using System.Globalization;
using Blockshot.Qcow2;

namespace Blockshot.Cli.Commands.Image;

/// <summary><c>blockshot image amend</c>: change options of an existing qcow2 image in place.</summary>
internal static class AmendCommand
{
    private static readonly string[] CreationOnly =
        ["cluster_size", "extended_l2", "compression_type", "preallocation", "size", "encryption", "encrypt.format"];

    public static Command Create()
    {
        var file = ImageArgs.File();
        var format = ImageArgs.Format();
        var options = ImageArgs.FormatOptions("Options to change: compat (0.10 or 1.1), lazy_refcounts, refcount_bits, backing_file, backing_fmt");
        var progress = ImageArgs.Progress();
        var quiet = ImageArgs.Quiet();
        var command = new Command("amend", "Change options of an existing qcow2 image (compat, lazy_refcounts, refcount_bits, backing file)")
        {
            file, format, options, progress, quiet,
        };
        command.SetAction(ImageErrors.Guard(async (parse, _) =>
        {
            var path = parse.GetValue(file)!;
            var o = OptionList.Parse(parse.GetValue(options));
            if (o.IsEmpty)
            {
                throw new CliException("Must specify options (-o)", ExitCodes.Usage);
            }
            var fmt = parse.GetValue(format) ?? ImageOpener.Probe(path);
            if (fmt != "qcow2")
            {
                throw new CliException($"Format driver '{fmt}' does not support option amendment", ExitCodes.Failure);
            }
            foreach (var name in CreationOnly)
            {
                if (o.Get(name) is not null)
                {
                    throw new CliException($"Invalid parameter '{name}': this option is only supported for image creation", ExitCodes.Failure);
                }
            }
            var amend = new Qcow2AmendOptions();
            if (o.Get("compat") is { } compat)
            {
                amend = amend with
                {
                    Compat = compat switch
                    {
                        "0.10" or "v2" => Qcow2Compat.V2,
                        "1.1" or "v3" => Qcow2Compat.V3,
                        _ => throw new CliException($"Invalid compatibility level: '{compat}'", ExitCodes.Failure),
                    },
                };
            }
            if (o.GetBool("lazy_refcounts") is { } lazy)
            {
                amend = amend with { LazyRefcounts = lazy };
            }
            if (o.Get("refcount_bits") is { } bits)
            {
                amend = amend with
                {
                    RefcountBits = int.TryParse(bits, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n
                        : throw new CliException($"Invalid refcount_bits '{bits}'", ExitCodes.Failure),
                };
            }
            if (o.Get("backing_file") is { } backing)
            {
                amend = backing.Length == 0
                    ? amend with { RemoveBackingFile = true }
                    : amend with { BackingFile = backing, BackingFormat = o.Get("backing_fmt") };
            }
            else if (o.Get("backing_fmt") is not null)
            {
                throw new CliException("backing_fmt can only be changed together with backing_file", ExitCodes.Failure);
            }
            if (o.Get("data_file") is not null || o.Get("data_file_raw") is not null)
            {
                throw new CliException("changing the data file of an image is not supported", ExitCodes.Failure);
            }
            foreach (var name in o.Names)
            {
                if (name is not ("compat" or "lazy_refcounts" or "refcount_bits" or "backing_file" or "backing_fmt"))
                {
                    throw new CliException($"Invalid parameter '{name}'", ExitCodes.Failure);
                }
            }
            try
            {
                await Qcow2Image.AmendAsync(path, amend).ConfigureAwait(false);
            }
            catch (Core.BlockException e) when (e.Error is Core.BlockError.Invalid or Core.BlockError.NotSupported or Core.BlockError.AccessDenied)
            {
                throw new CliException($"{path}: {ImageErrors.Strip(e.Message)}", ExitCodes.Failure, e);
            }
            if (parse.GetValue(progress) && !parse.GetValue(quiet))
            {
                Console.WriteLine("    (100.00/100%)");
            }
            return ExitCodes.Success;
        }));
        return command;
    }
}
