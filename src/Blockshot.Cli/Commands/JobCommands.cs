using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Blockshot.Cli.Client;
using Blockshot.Daemon.Protocol;

namespace Blockshot.Cli.Commands;

/// <summary><c>blockshot job list|pause|resume|cancel|wait|speed|dismiss</c>: the daemon's jobs.</summary>
internal static class JobCommands
{
    public static Command Create()
    {
        var command = new Command("job", "List, pause, resume, cancel and wait for the daemon's jobs");
        command.Subcommands.Add(List());
        command.Subcommands.Add(Control("pause", "Pause a running job", "job.pause", "paused"));
        command.Subcommands.Add(Control("resume", "Resume a paused job", "job.resume", "resumed"));
        command.Subcommands.Add(Control("cancel", "Cancel a job (it undoes its work in progress, then ends as cancelled)", "job.cancel", "cancelling"));
        command.Subcommands.Add(Wait());
        command.Subcommands.Add(Speed());
        command.Subcommands.Add(Control("dismiss", "Forget a finished job", "job.dismiss", "dismissed"));
        return command;
    }

    private static Command List()
    {
        var command = new Command("list", "List jobs, running and finished");
        command.SetAction(DaemonCall.Action(async (parse, client, ct) =>
        {
            var jobs = await client.CallAsync("job.list", null, ProtocolJsonContext.Default.ListJobInfo, ct).ConfigureAwait(false);
            if (ClientOptions.Json(parse))
            {
                Printer.Json(jobs, ProtocolJsonContext.Default.ListJobInfo);
                return ExitCodes.Success;
            }
            var table = new TextTable("ID", "TYPE", "DEVICE", "STATE", "DONE", "TOTAL", "RATE", "NOTE").Right(4, 5, 6);
            foreach (var j in jobs)
            {
                table.Add(j.Id, j.Type, j.Device, j.State, SizeText.Format(j.BytesDone), SizeText.Format(j.BytesTotal),
                    j.State == "running" ? SizeText.Format(j.Rate) + "/s" : "-", j.Error ?? Note(j));
            }
            Printer.Line(table.Count == 0 ? "no jobs" : table.ToString());
            return ExitCodes.Success;
        }));
        return command;
    }

    private static string Note(JobInfo job) =>
        job.Result is { } result && result["target"] is { } target
            ? $"target {target}{(result["pivoted"]?.GetValue<bool>() == true ? " (pivoted)" : "")}"
            : "";

    private static Command Control(string name, string description, string method, string verb)
    {
        var id = new Argument<string>("ID") { Description = "Job id" };
        var command = new Command(name, description) { id };
        command.SetAction(DaemonCall.Action(async (parse, client, ct) =>
        {
            var result = await client.CallAsync(method, new JsonObject { ["id"] = parse.GetValue(id) }, ct).ConfigureAwait(false);
            DeviceCommands.Say(parse, result, $"{verb} job {parse.GetValue(id)}");
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Wait()
    {
        var id = new Argument<string>("ID") { Description = "Job id" };
        var command = new Command("wait", "Wait for a job to end, showing its progress (exit 0 completed, 1 failed, 8 cancelled)") { id };
        command.SetAction(DaemonCall.Action((parse, client, ct) => FollowAsync(parse, client, parse.GetValue(id)!, ct)));
        return command;
    }

    private static Command Speed()
    {
        var id = new Argument<string>("ID") { Description = "Job id" };
        var rate = new Argument<string>("RATE") { Description = "Bytes per second (e.g. 100M); 0 = unlimited" };
        rate.Validators.Add(result =>
        {
            if (!SizeText.TryParse(result.GetValueOrDefault<string>() ?? "", out _))
            {
                result.AddError($"'{result.GetValueOrDefault<string>()}' is not a rate, e.g. 100M");
            }
        });
        var command = new Command("speed", "Change a job's rate limit") { id, rate };
        command.SetAction(DaemonCall.Action(async (parse, client, ct) =>
        {
            SizeText.TryParse(parse.GetValue(rate)!, out var bytes);
            var result = await client.CallAsync("job.set-speed", new JsonObject { ["id"] = parse.GetValue(id), ["speed"] = bytes }, ct).ConfigureAwait(false);
            DeviceCommands.Say(parse, result, $"job {parse.GetValue(id)}: rate limit {(bytes == 0 ? "off" : SizeText.Format(bytes) + "/s")}");
            return ExitCodes.Success;
        }));
        return command;
    }

    /// <summary>Follows a job to its end with progress; SIGINT stops waiting (the job goes on).</summary>
    public static async Task<int> FollowAsync(ParseResult parse, ControlClient client, string id, CancellationToken ct)
    {
        using var interrupted = CancellationTokenSource.CreateLinkedTokenSource(ct);
        using var sigint = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, c =>
        {
            c.Cancel = true;
            interrupted.Cancel();
        });
        JobInfo job;
        try
        {
            job = await JobProgress.FollowAsync(client, id, quiet: false, interrupted.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (interrupted.IsCancellationRequested)
        {
            Console.Error.WriteLine();
            Console.Error.WriteLine($"blockshot: stopped waiting; job {id} goes on in the daemon ('blockshot job cancel {id}' stops it)");
            return ExitCodes.Interrupted;
        }
        if (ClientOptions.Json(parse))
        {
            Printer.Json(job, ProtocolJsonContext.Default.JobInfo);
        }
        else
        {
            var elapsed = job.Started is { } s && job.Finished is { } f ? (f - s).TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + " s" : "";
            Printer.Line(job.State switch
            {
                "completed" => $"job {job.Id} completed: {SizeText.Format(job.BytesDone)} in {elapsed}{(Note(job) is { Length: > 0 } n ? ", " + n : "")}",
                "cancelled" => $"job {job.Id} was cancelled",
                _ => $"job {job.Id} failed: {job.Error}",
            });
        }
        return JobProgress.ExitCodeOf(job);
    }
}
