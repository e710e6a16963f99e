using System.CommandLine;
using System.Globalization;
using Blockshot.Drivers;
using Blockshot.Qcow2;
using Blockshot.Qcow2.Format;

namespace Blockshot.Cli.Commands.Image;

/// <summary><c>blockshot image create</c>: a new raw or qcow2 image, optionally over a backing file.</summary>
internal static class CreateCommand
{
    public static Command Create()
    {
        var file = ImageArgs.File("FILE", "Image file to create (replaced if it exists and nobody uses it)");
        var size = new Argument<string?>("SIZE") { Description = "Virtual size (512, 64K, 10G...); with a backing file, defaults to its size", Arity = ArgumentArity.ZeroOrOne };
        var format = ImageArgs.Format(what: "Format of the new image: raw or qcow2 (default raw)");
        var options = ImageArgs.FormatOptions("Format options: cluster_size, compat, refcount_bits, extended_l2, compression_type, lazy_refcounts, preallocation, backing_file, backing_fmt, data_file, data_file_raw");
        var backing = new Option<string?>("--backing", "-b") { Description = "Backing file (a relative name is relative to the new image's directory)" };
        var backingFormat = ImageArgs.Format("--backing-format", "-F", "Format of the backing file: raw or qcow2 (required with -b)");
        var unsafeBacking = new Option<bool>("--unsafe", "-u") { Description = "Do not open the backing file (it need not exist yet; SIZE is then required)" };
        var quiet = ImageArgs.Quiet();
        var command = new Command("create", "Create a new image") { file, size, format, options, backing, backingFormat, unsafeBacking, quiet };
        command.SetAction(ImageErrors.Guard(async (parse, _) =>
        {
            var o = OptionList.Parse(parse.GetValue(options));
            var fmt = parse.GetValue(format) ?? "raw";
            var path = parse.GetValue(file)!;
            var sizeText = parse.GetValue(size) ?? o.Get("size");
            long bytes = -1;
            if (sizeText is not null && !SizeText.TryParse(sizeText, out bytes))
            {
                throw new CliException($"Invalid image size specified: '{sizeText}'. You may use k, M, G, T or P suffixes for kilobytes, megabytes, gigabytes, terabytes and petabytes.", ExitCodes.Usage);
            }
            var backingFile = parse.GetValue(backing) ?? o.Get("backing_file");
            var backingFmt = parse.GetValue(backingFormat) ?? o.Get("backing_fmt");
            string summary;
            if (fmt == "qcow2")
            {
                var create = Qcow2Options(o, backingFile, backingFmt) with { OpenBackingFile = !parse.GetValue(unsafeBacking) };
                o.RejectUnknown("qcow2");
                if (bytes < 0 && (backingFile is null || !create.OpenBackingFile))
                {
                    throw new CliException("Image creation needs a size parameter", ExitCodes.Usage);
                }
                await Qcow2Image.CreateAsync(path, bytes, create).ConfigureAwait(false);
                if (bytes < 0)
                {
                    await using var made = await Qcow2Node.OpenAsync(path, new Qcow2OpenOptions { ReadOnly = true, OpenBacking = false }).ConfigureAwait(false);
                    bytes = made.Size;
                }
                summary = Summary(path, create, bytes);
            }
            else
            {
                if (backingFile is not null)
                {
                    throw new CliException("raw images cannot have a backing file (use -f qcow2)", ExitCodes.Usage);
                }
                var prealloc = o.Get("preallocation") ?? "off";
                o.RejectUnknown("raw");
                if (bytes < 0)
                {
                    throw new CliException("Image creation needs a size parameter", ExitCodes.Usage);
                }
                await CreateRawAsync(path, bytes, prealloc).ConfigureAwait(false);
                summary = $"Formatting '{path}', fmt=raw size={bytes}" + (prealloc == "off" ? "" : $" preallocation={prealloc}");
            }
            if (!parse.GetValue(quiet))
            {
                Console.WriteLine(summary);
            }
            return ExitCodes.Success;
        }));
        return command;
    }

    /// <summary>The qcow2 creation options from <c>-o</c>, <c>-b</c> and <c>-F</c>.</summary>
    public static Qcow2CreateOptions Qcow2Options(OptionList o, string? backingFile, string? backingFormat)
    {
        var result = new Qcow2CreateOptions
        {
            BackingFile = backingFile,
            BackingFormat = backingFormat,
        };
        if (o.Get("compat") is { } compat)
        {
            result = result with
            {
                Compat = compat switch
                {
                    "0.10" or "v2" => Qcow2Compat.V2,
                    "1.1" or "v3" => Qcow2Compat.V3,
                    _ => throw new CliException($"Invalid compatibility level: '{compat}'", ExitCodes.Usage),
                },
            };
        }
        if (o.GetSize("cluster_size") is { } cluster)
        {
            result = result with { ClusterSize = cluster > int.MaxValue ? int.MaxValue : (int)cluster };
        }
        if (o.Get("refcount_bits") is { } bits)
        {
            result = result with
            {
                RefcountBits = int.TryParse(bits, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n
                    : throw new CliException($"Invalid refcount_bits '{bits}'", ExitCodes.Usage),
            };
        }
        if (o.GetBool("extended_l2") is { } extended)
        {
            result = result with { ExtendedL2 = extended };
        }
        if (o.GetBool("lazy_refcounts") is { } lazy)
        {
            result = result with { LazyRefcounts = lazy };
        }
        if (o.Get("compression_type") is { } compression)
        {
            result = result with { CompressionType = ParseCompression(compression) };
        }
        if (o.Get("preallocation") is { } prealloc)
        {
            result = result with
            {
                Preallocation = prealloc switch
                {
                    "off" => Qcow2Preallocation.Off,
                    "metadata" => Qcow2Preallocation.Metadata,
                    "falloc" => Qcow2Preallocation.Falloc,
                    "full" => Qcow2Preallocation.Full,
                    _ => throw new CliException($"Invalid preallocation mode: '{prealloc}'", ExitCodes.Usage),
                },
            };
        }
        if (o.Get("data_file") is { } dataFile)
        {
            result = result with { DataFile = dataFile };
        }
        if (o.GetBool("data_file_raw") is { } dataFileRaw)
        {
            result = result with { DataFileRaw = dataFileRaw };
        }
        if (o.Get("encryption") is not null || o.Get("encrypt.format") is not null)
        {
            throw new CliException("encrypted qcow2 images are not supported", ExitCodes.Usage);
        }
        return result;
    }

    /// <summary>zlib (deflate) or zstd.</summary>
    public static CompressionType ParseCompression(string name) => name switch
    {
        "zlib" or "deflate" => CompressionType.Deflate,
        "zstd" => CompressionType.Zstd,
        _ => throw new CliException($"Invalid parameter 'compression_type': '{name}' (expected zlib or zstd)", ExitCodes.Usage),
    };

    /// <summary>The "Formatting ..." line the reference tool prints for a qcow2 image.</summary>
    public static string Summary(string path, Qcow2CreateOptions c, long size)
    {
        var parts = new List<string>
        {
            $"Formatting '{path}', fmt=qcow2",
            $"cluster_size={c.ClusterSize}",
        };
        if (c.Compat == Qcow2Compat.V2)
        {
            parts.Add("compat=0.10");
        }
        if (c.Preallocation != Qcow2Preallocation.Off)
        {
            parts.Add("preallocation=" + c.Preallocation.ToString().ToLowerInvariant());
        }
        parts.Add("extended_l2=" + (c.ExtendedL2 ? "on" : "off"));
        parts.Add("compression_type=" + (c.CompressionType == CompressionType.Zstd ? "zstd" : "zlib"));
        parts.Add(string.Create(CultureInfo.InvariantCulture, $"size={size}"));
        if (c.BackingFile is not null)
        {
            parts.Add("backing_file=" + c.BackingFile);
            parts.Add("backing_fmt=" + c.BackingFormat);
        }
        if (c.DataFile is not null)
        {
            parts.Add("data_file=" + c.DataFile);
            parts.Add("data_file_raw=" + (c.DataFileRaw ? "on" : "off"));
        }
        parts.Add("lazy_refcounts=" + (c.LazyRefcounts ? "on" : "off"));
        parts.Add(string.Create(CultureInfo.InvariantCulture, $"refcount_bits={c.RefcountBits}"));
        return string.Join(' ', parts);
    }

    /// <summary>A raw image: sparse (off), reserved (falloc) or written with zeros (full).</summary>
    public static async Task CreateRawAsync(string path, long size, string preallocation)
    {
        if (preallocation is not ("off" or "falloc" or "full"))
        {
            throw new CliException($"Invalid preallocation mode: '{preallocation}' (raw takes off, falloc or full)", ExitCodes.Usage);
        }
        using (var handle = ImageFileHandle.CreateOrTruncate(path, locking: true))
        {
            RandomAccess.SetLength(handle, size);
        }
        if (preallocation == "off" || size == 0)
        {
            return;
        }
        await using var node = RawFileNode.Open(path);
        if (preallocation == "falloc")
        {
            await node.WriteZeroesAsync(0, size, Core.IoFlags.None).ConfigureAwait(false);
            return;
        }
        var zeros = new byte[Math.Min(size, 4 << 20)];
        for (long pos = 0; pos < size; pos += zeros.Length)
        {
            await node.WriteAsync(pos, zeros.AsMemory(0, (int)Math.Min(zeros.Length, size - pos)), Core.IoFlags.None).ConfigureAwait(false);
        }
        await node.FlushAsync().ConfigureAwait(false);
    }
}
