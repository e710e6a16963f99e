using System.CommandLine;
using Blockshot.Qcow2;

namespace Blockshot.Cli.Commands.Image;

/// <summary>
/// <c>blockshot image check</c>: consistency check and repair of a qcow2 image, with the reference tool's
/// exit codes: 0 clean, 1 the check could not run or complete, 2 corruptions, 3 leaked clusters only,
/// 63 the format has no checks (raw).
/// </summary>
internal static class CheckCommand
{
    /// <summary>Exit code for a format without checks.</summary>
    public const int NotSupported = 63;

    public static Command Create()
    {
        var file = ImageArgs.File();
        var format = ImageArgs.Format();
        var output = ImageArgs.Output();
        var repair = new Option<string?>("--repair", "-r") { Description = "Repair: 'leaks' (leaked clusters only) or 'all'" };
        repair.AcceptOnlyFromAmong("leaks", "all");
        var forceShare = ImageArgs.ForceShare();
        var quiet = ImageArgs.Quiet();
        var command = new Command("check", "Check a qcow2 image for consistency; exit 0 clean, 1 check failed, 2 corruptions, 3 leaks only, 63 no checks for the format")
        {
            file, format, output, repair, forceShare, quiet,
        };
        command.Validators.Add(result =>
        {
            if (result.GetValue(repair) is not null && result.GetValue(forceShare))
            {
                result.AddError("-r and -U cannot be used together (a repair needs the image's locks)");
            }
        });
        command.SetAction(CommandRunner.Guard(async (parse, _) =>
        {
            var path = parse.GetValue(file)!;
            var mode = parse.GetValue(repair) switch
            {
                "leaks" => Qcow2RepairMode.Leaks,
                "all" => Qcow2RepairMode.All,
                _ => Qcow2RepairMode.None,
            };
            Qcow2CheckResult result;
            try
            {
                var fmt = parse.GetValue(format) ?? ImageOpener.Probe(path);
                if (fmt != "qcow2")
                {
                    await Console.Error.WriteLineAsync("blockshot: This image format does not support checks").ConfigureAwait(false);
                    return NotSupported;
                }
                result = await Qcow2Image.CheckAsync(path, mode, locking: !parse.GetValue(forceShare)).ConfigureAwait(false);
            }
            catch (Exception e) when (ImageErrors.Translate(e) is { } cli)
            {
                // Codes 2 and 3 mean corruptions and leaks here, so every failure to check is 1.
                await Console.Error.WriteLineAsync($"blockshot: Could not check '{path}': {cli.Message}").ConfigureAwait(false);
                return ExitCodes.Failure;
            }
            if (!parse.GetValue(quiet))
            {
                if (parse.GetValue(output) == "json")
                {
                    Console.WriteLine(JsonText.Reindent(result.ToJson()));
                }
                else
                {
                    Console.Write(result.ToText());
                }
            }
            return result.ExitCode;
        }));
        return command;
    }
}
