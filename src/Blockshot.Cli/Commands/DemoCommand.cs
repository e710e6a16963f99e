using System.CommandLine;
using System.Diagnostics;
using System.Security.Cryptography;
using Blockshot.Core;
using Blockshot.Core.Extents;
using Blockshot.Drivers;
using Blockshot.Nbd;
using Blockshot.Nbd.Client;

namespace Blockshot.Cli.Commands;

/// <summary>
/// <c>blockshot demo</c>: the main job end to end, as far as it exists: make a sparse image, serve it
/// over NBD, write and read it through an NBD client, and show what happened.
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var dir = new Option<string?>("--dir") { Description = "Work in this directory (default: a new temporary one)" };
        var keep = new Option<bool>("--keep") { Description = "Keep the image and directory afterwards" };
        var size = new Option<string>("--size") { Description = "Image size", DefaultValueFactory = _ => "1G" };
        var command = new Command("demo", "Create a sparse image, serve it over NBD, write and read it through a client, and report")
        {
            dir, keep, size,
        };
        size.Validators.Add(result =>
        {
            if (!SizeText.TryParse(result.GetValueOrDefault<string>() ?? "", out var bytes) || bytes < 64 << 20)
            {
                result.AddError("--size must be a size of at least 64M, e.g. 1G");
            }
        });
        command.SetAction(CommandRunner.Guard(async (parse, ct) =>
        {
            SizeText.TryParse(parse.GetValue(size)!, out var bytes);
            return await RunAsync(parse.GetValue(dir), parse.GetValue(keep), bytes, ct).ConfigureAwait(false);
        }));
        return command;
    }

    private static async Task<int> RunAsync(string? dirOption, bool keep, long size, CancellationToken ct)
    {
        var dir = dirOption is null ? Directory.CreateTempSubdirectory("blockshot-demo-").FullName : Path.GetFullPath(dirOption);
        Directory.CreateDirectory(dir);
        var image = Path.Combine(dir, "disk.raw");
        var socket = Path.Combine(dir, "nbd.sock");
        var clock = Stopwatch.StartNew();
        var step = 0;
        void Say(string text) => Console.WriteLine($"{++step,2}. {text}");

        Console.WriteLine("Blockshot demo: a sparse image served over NBD");
        try
        {
            await using (var create = File.Create(image))
            {
                create.SetLength(size);
            }
            Say($"created {image}: {SizeText.Format(size)} virtual, {SizeText.Format(Allocated(image))} on disk");

            await using var node = RawFileNode.Open(image, RawFileOptions.Default);
            await using var slot = new Slot(node, name: "disk");
            await using var server = new NbdServer();
            server.AddExport(new NbdExport("disk", slot, description: "Blockshot demo disk"));
            server.ListenUnix(socket);
            Say($"serving it as NBD export 'disk' at nbd+unix:///disk?socket={socket}");

            var first = RandomNumberGenerator.GetBytes(4 << 20);
            var second = RandomNumberGenerator.GetBytes(1 << 20);
            var secondAt = size / 2 + 12345;
            await using (var client = await NbdClient.ConnectUnixAsync(socket, "disk", ct).ConfigureAwait(false))
            {
                Say($"connected the built-in NBD client: size {SizeText.Format(client.Size)}, flags {client.Flags}");
                await client.WriteAsync(0, first, cancellationToken: ct).ConfigureAwait(false);
                await client.WriteAsync(secondAt, second, cancellationToken: ct).ConfigureAwait(false);
                await client.FlushAsync(ct).ConfigureAwait(false);
                Say($"wrote 4 MiB of random data at offset 0 and 1 MiB at offset {secondAt} (unaligned), then flushed");

                var back = new byte[first.Length];
                await client.ReadAsync(0, back, ct).ConfigureAwait(false);
                var back2 = new byte[second.Length];
                await client.ReadAsync(secondAt, back2, ct).ConfigureAwait(false);
                if (!back.AsSpan().SequenceEqual(first) || !back2.AsSpan().SequenceEqual(second))
                {
                    throw new CliException("data read back through NBD differs from what was written", ExitCodes.Failure);
                }
                Say($"read both ranges back through NBD: identical (SHA-256 {Convert.ToHexString(SHA256.HashData(first))[..16]}…)");

                var map = new List<Extent>();
                for (long at = 0; at < client.Size;)
                {
                    var extents = await client.GetExtentsAsync(at, (uint)Math.Min(client.Size - at, 1L << 31), ct).ConfigureAwait(false);
                    map.AddRange(extents);
                    at = extents[^1].End;
                }
                Say("allocation map (NBD base:allocation):");
                foreach (var e in Merge(map))
                {
                    Console.WriteLine($"      {e.Offset,14:N0}  {SizeText.Format(e.Length),10}  {((e.Flags & AllocationFlags.Hole) != 0 ? "hole, reads as zero" : "data")}");
                }
            }

            if (FindTool("qemu-img") is { } qemuImg)
            {
                var compare = await RunToolAsync(qemuImg, ["compare", "-f", "raw", "-F", "raw", "-U", image, $"nbd+unix:///disk?socket={socket}"]).ConfigureAwait(false);
                Say($"qemu-img compare of the file and the export: {compare.Trim()}");
            }
            if (FindTool("nbdinfo") is { } nbdinfo)
            {
                var info = await RunToolAsync(nbdinfo, ["--map", $"nbd+unix:///disk?socket={socket}"]).ConfigureAwait(false);
                Say("nbdinfo --map of the export:");
                foreach (var line in info.Split('\n', StringSplitOptions.RemoveEmptyEntries))
                {
                    Console.WriteLine("      " + line.Trim());
                }
            }
            await server.StopAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
            Say($"stopped the server; the image now uses {SizeText.Format(Allocated(image))} on disk of {SizeText.Format(size)} virtual");
            Console.WriteLine($"done in {clock.Elapsed.TotalSeconds:0.00} s{(keep ? $"; kept {dir}" : "")}");
            return ExitCodes.Success;
        }
        finally
        {
            if (!keep && dirOption is null)
            {
                Directory.Delete(dir, recursive: true);
            }
        }
    }

    private static IEnumerable<Extent> Merge(List<Extent> map)
    {
        Extent? current = null;
        foreach (var e in map)
        {
            var kind = (e.Flags & AllocationFlags.Hole) != 0 ? AllocationFlags.HoleZero : AllocationFlags.Data;
            if (current is { } c && c.Flags == kind && c.End == e.Offset)
            {
                current = c with { Length = c.Length + e.Length };
                continue;
            }
            if (current is { } done)
            {
                yield return done;
            }
            current = new Extent(e.Offset, e.Length, kind);
        }
        if (current is { } last)
        {
            yield return last;
        }
    }

    private static long Allocated(string path)
    {
        using var process = Process.Start(new ProcessStartInfo("du", ["-B1", "--", path]) { RedirectStandardOutput = true });
        var text = process!.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return long.TryParse(text.Split('\t')[0], out var bytes) ? bytes : 0;
    }

    private static string? FindTool(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    private static async Task<string> RunToolAsync(string tool, string[] args)
    {
        var psi = new ProcessStartInfo(tool, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(psi)!;
        var output = await process.StandardOutput.ReadToEndAsync().ConfigureAwait(false);
        var error = await process.StandardError.ReadToEndAsync().ConfigureAwait(false);
        await process.WaitForExitAsync().ConfigureAwait(false);
        return process.ExitCode == 0 ? output : $"{Path.GetFileName(tool)} failed ({process.ExitCode}): {error.Trim()}";
    }
}
