using System.CommandLine;
using System.Text.Json.Nodes;
using Blockshot.Cli.Client;
using Blockshot.Daemon.Protocol;

namespace Blockshot.Cli.Commands;

/// <summary><c>blockshot mirror DEVICE TARGET [--pivot]</c>: copy a live device, converge, optionally pivot.</summary>
internal static class MirrorCommand
{
    public static Command Create()
    {
        var device = new Argument<string>("DEVICE") { Description = "Device to copy" };
        var target = new Argument<string>("TARGET") { Description = "New file (created), empty file, or block device to copy to" };
        target.Validators.Add(CliValidation.NotAnOption);
        var pivot = new Option<bool>("--pivot") { Description = "Make the copy the device's image once converged (live migration)" };
        var speed = new Option<string?>("--speed") { Description = "Rate limit of the background copy, e.g. 200M (bytes per second)" };
        speed.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string?>() is { } text && !SizeText.TryParse(text, out _))
            {
                result.AddError($"--speed: '{text}' is not a rate, e.g. 200M");
            }
        });
        var id = new Option<string?>("--id") { Description = "Job id (default job-N)" };
        var detach = new Option<bool>("--detach", "-d") { Description = "Start the job and return at once (follow it with 'blockshot job wait')" };
        var command = new Command("mirror", "Copy a live device to a new file or device while writes continue, then optionally pivot to the copy")
        {
            device, target, pivot, speed, id, detach,
        };
        command.SetAction(DaemonCall.Action(async (parse, client, ct) =>
        {
            long bytes = 0;
            if (parse.GetValue(speed) is { } text)
            {
                SizeText.TryParse(text, out bytes);
            }
            var job = await client.CallAsync("mirror.start", new JsonObject
            {
                ["device"] = parse.GetValue(device),
                ["target"] = Path.GetFullPath(parse.GetValue(target)!),
                ["pivot"] = parse.GetValue(pivot),
                ["speed"] = bytes,
                ["id"] = parse.GetValue(id),
            }, ProtocolJsonContext.Default.JobInfo, ct).ConfigureAwait(false);
            if (parse.GetValue(detach))
            {
                if (ClientOptions.Json(parse))
                {
                    Printer.Json(job, ProtocolJsonContext.Default.JobInfo);
                }
                else
                {
                    Printer.Line($"started mirror job {job.Id}: {job.Device} → {Path.GetFullPath(parse.GetValue(target)!)}");
                }
                return ExitCodes.Success;
            }
            return await JobCommands.FollowAsync(parse, client, job.Id, ct).ConfigureAwait(false);
        }));
        return command;
    }
}
