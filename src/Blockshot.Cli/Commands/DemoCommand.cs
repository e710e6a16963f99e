using System.CommandLine;
using System.Diagnostics;
using System.Net.Sockets;
using Blockshot.Cli.Commands.Demo;
using Blockshot.Core;
using Blockshot.Daemon.Protocol;
using Blockshot.Nbd.Client;

namespace Blockshot.Cli.Commands;

/// <summary>
/// <c>blockshot demo</c>: the main job end to end, as far as it exists: a sparse image becomes a tracked
/// device of an in-process daemon, a live snapshot is backed up in full while the device changes, and the
/// next snapshot's dirty bitmap drives an incremental backup that is restored and compared (see <see cref="DemoRun"/>).
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var dir = new Option<string?>("--dir") { Description = "Work in this directory (default: a new temporary one)" };
        var keep = new Option<bool>("--keep") { Description = "Keep the image, the backups and the directory afterwards" };
        var size = new Option<string>("--size") { Description = "Image size", DefaultValueFactory = _ => "1G" };
        var command = new Command("demo",
            "Run the backup main job end to end: daemon, tracked device over NBD, live snapshot, full backup, dirty bitmap, incremental backup restored and verified")
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
        if (dirOption is not null && System.Text.Encoding.UTF8.GetByteCount(Path.Combine(Path.GetFullPath(dirOption), "control.sock")) > 107)
        {
            throw new CliException($"--dir {dirOption}: too long for the Unix sockets the demo makes there (at most 107 bytes for DIR/control.sock)", ExitCodes.Usage);
        }
        var created = dirOption is null || !Directory.Exists(dirOption);
        var dir = dirOption is null ? Directory.CreateTempSubdirectory("blockshot-demo-").FullName : Path.GetFullPath(dirOption);
        Directory.CreateDirectory(dir);
        var clock = Stopwatch.StartNew();
        Console.WriteLine("Blockshot demo: live snapshot, full backup, changed-block tracking and an incremental backup, over NBD");
        try
        {
            await new DemoRun(dir, size, ct).RunAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is ControlException or NbdClientException or BlockException or IOException or SocketException)
        {
            throw new CliException($"demo failed: {e.Message}", ExitCodes.Failure, e);
        }
        finally
        {
            if (!keep && created)
            {
                Directory.Delete(dir, recursive: true);
            }
        }
        Console.WriteLine($"done in {clock.Elapsed.TotalSeconds:0.00} s{(keep || !created ? $"; kept {dir}" : $"; removed {dir}")}");
        return ExitCodes.Success;
    }
}
