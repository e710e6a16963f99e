using System.Text.Json.Nodes;
using Blockshot.Daemon.Jobs;
using Blockshot.Daemon.Protocol;
using static Blockshot.Daemon.Control.ParamSpec;

namespace Blockshot.Daemon.Control.Methods;

/// <summary><c>job.*</c> and <c>mirror.start</c>.</summary>
internal static class JobMethods
{
    private static readonly ParamSpec Id = Req("id", ParamType.String, "job id");

    public static IEnumerable<RpcMethod> Create(DaemonServices s)
    {
        var jobs = s.Jobs;
        yield return new("job.list", "List jobs, running and finished", [], "array of job-info",
            (_, _, _) => Task.FromResult(Json.Of(jobs.List().Select(j => j.ToInfo()))));

        yield return new("job.get", "Describe one job", [Id], "job-info",
            (p, _, _) => Task.FromResult(Json.Of(jobs.Get(p.String("id")).ToInfo())));

        yield return Control("job.pause", "Pause a running job", jobs, j => j.Pause());
        yield return Control("job.resume", "Resume a paused job", jobs, j => j.Resume());
        yield return Control("job.cancel", "Cancel a job; it ends as cancelled once it has undone its work in progress", jobs, j => j.Cancel());

        yield return new("job.set-speed", "Change a job's rate limit",
            [Id, Req("speed", ParamType.Integer, "bytes per second; 0 = unlimited")],
            "job-info",
            (p, _, _) =>
            {
                var speed = p.Integer("speed", 0);
                if (speed < 0)
                {
                    throw RpcParams.Invalid("'speed' must be at least 0");
                }
                var job = jobs.Get(p.String("id"));
                job.SetSpeed(speed);
                return Task.FromResult(Json.Of(job.ToInfo()));
            });

        yield return new("job.wait", "Wait until a job has ended and describe it",
            [Id, Opt("timeout-ms", ParamType.Integer, "give up after this long (error timeout)", "no limit")],
            "job-info",
            async (p, _, ct) =>
            {
                var job = jobs.Get(p.String("id"));
                var timeout = p.Milliseconds("timeout-ms", System.Threading.Timeout.InfiniteTimeSpan, max: 86_400_000);
                try
                {
                    await job.Finished.WaitAsync(timeout, ct).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                    throw new ControlException(ControlErrorCodes.Timeout, $"job {job.Id} is still {Job.Name(job.State)}");
                }
                return Json.Of(job.ToInfo());
            });

        yield return new("job.dismiss", "Forget a finished job", [Id], "{dismissed: id}",
            (p, _, _) =>
            {
                jobs.Dismiss(p.String("id"));
                return Task.FromResult<JsonNode?>(new JsonObject { ["dismissed"] = p.String("id") });
            });

        yield return new("mirror.start", "Copy a live device to a new file or device while writes continue, converge, then optionally pivot to the copy",
            [
                Req("device", ParamType.String, "device name"),
                Req("target", ParamType.String, "target file (created if missing; an empty file is extended) or block device"),
                Opt("pivot", ParamType.Boolean, "make the target the device's image once converged (live migration)", "false"),
                Opt("speed", ParamType.Integer, "rate limit of the background copy in bytes per second; 0 = unlimited", "0"),
                Opt("id", ParamType.String, "job id", "job-N"),
                Opt("granularity", ParamType.Integer, "bytes tracked per dirty bit (a power of two, 4096 to 64M)", "65536"),
            ],
            "job-info",
            async (p, _, _) =>
            {
                var speed = p.Integer("speed", 0);
                var granularity = p.Integer("granularity", 64 << 10);
                if (speed < 0)
                {
                    throw RpcParams.Invalid("'speed' must be at least 0");
                }
                if (granularity is < 4096 or > 64 << 20 || (granularity & (granularity - 1)) != 0)
                {
                    throw RpcParams.Invalid("'granularity' must be a power of two from 4096 to 67108864");
                }
                return Json.Of(await s.Registry.StartMirrorAsync(p.String("device"), p.String("target"), p.Boolean("pivot"), speed,
                    p.OptionalString("id"), (int)granularity).ConfigureAwait(false));
            });
    }

    private static RpcMethod Control(string name, string description, JobManager jobs, Action<Job> action) =>
        new(name, description, [Id], "job-info", (p, _, _) =>
        {
            var job = jobs.Get(p.String("id"));
            action(job);
            return Task.FromResult(Json.Of(job.ToInfo()));
        });
}
