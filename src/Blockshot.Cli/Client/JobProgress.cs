using System.Diagnostics;
using System.Globalization;
using Blockshot.Daemon.Protocol;

namespace Blockshot.Cli.Client;

/// <summary>
/// Follows a job until it ends, showing progress on stderr: a bar with rate and ETA redrawn in place on a
/// terminal, a plain line every few seconds otherwise. Returns the final state; the exit code follows it
/// (completed 0, failed 1, cancelled 8).
/// </summary>
internal static class JobProgress
{
    private static readonly TimeSpan PlainInterval = TimeSpan.FromSeconds(2);

    public static async Task<JobInfo> FollowAsync(ControlClient client, string id, bool quiet, CancellationToken cancellationToken)
    {
        var tty = !Console.IsErrorRedirected;
        var lastPlain = Stopwatch.StartNew();
        var first = true;
        while (true)
        {
            var job = await client.CallAsync("job.get", new() { ["id"] = id }, ProtocolJsonContext.Default.JobInfo, cancellationToken).ConfigureAwait(false);
            if (!quiet)
            {
                if (tty)
                {
                    Console.Error.Write("\r" + Bar(job, Math.Max(40, SafeWidth() - 1)) + "\u001b[K");
                    if (job.IsFinished)
                    {
                        Console.Error.WriteLine();
                    }
                }
                else if (first || job.IsFinished || lastPlain.Elapsed >= PlainInterval)
                {
                    Console.Error.WriteLine(Plain(job));
                    lastPlain.Restart();
                }
            }
            first = false;
            if (job.IsFinished)
            {
                return job;
            }
            await Task.Delay(tty ? 200 : 250, cancellationToken).ConfigureAwait(false);
        }
    }

    public static int ExitCodeOf(JobInfo job) => job.State switch
    {
        "completed" => ExitCodes.Success,
        "cancelled" => ExitCodes.JobCancelled,
        _ => ExitCodes.Failure,
    };

    /// <summary>A one-line bar: <c>job-1 mirror [#####.....]  45.2%  512.0 MiB/1.0 GiB  210.3 MiB/s  ETA 0:03</c>.</summary>
    public static string Bar(JobInfo job, int width)
    {
        var fraction = Fraction(job);
        // A fixed-width tail keeps the bar from changing length as the numbers change.
        var tail = $" {Percent(fraction),6}  {SizeText.Format(job.BytesDone) + "/" + SizeText.Format(job.BytesTotal),-21}  {Rate(job),12}  {Eta(job),-12}";
        var head = $"{job.Id} {job.Type} {job.State} ";
        var barWidth = Math.Clamp(width - head.Length - tail.Length - 2, 10, 50);
        var filled = (int)Math.Round(fraction * barWidth);
        return head + "[" + new string('#', filled) + new string('.', barWidth - filled) + "]" + tail;
    }

    /// <summary>A plain progress line for logs: <c>job-1 running 45.2% (512.0 MiB of 1.0 GiB) at 210.3 MiB/s, ETA 0:03</c>.</summary>
    public static string Plain(JobInfo job)
    {
        var text = $"{job.Id} {job.State} {Percent(Fraction(job))} ({SizeText.Format(job.BytesDone)} of {SizeText.Format(job.BytesTotal)})";
        if (job.State == "running")
        {
            text += $" at {Rate(job)}, {Eta(job)}";
        }
        if (job.Error is not null)
        {
            text += $": {job.Error}";
        }
        return text;
    }

    private static double Fraction(JobInfo job) =>
        job.BytesTotal > 0 ? Math.Clamp((double)job.BytesDone / job.BytesTotal, 0, 1) : job.State == "completed" ? 1 : 0;

    private static string Percent(double fraction) => (fraction * 100).ToString("0.0", CultureInfo.InvariantCulture) + "%";

    private static string Rate(JobInfo job) => SizeText.Format(job.Rate) + "/s";

    private static string Eta(JobInfo job)
    {
        if (job.IsFinished)
        {
            return job.State;
        }
        if (job.Rate <= 0 || job.BytesTotal <= job.BytesDone)
        {
            return "ETA -";
        }
        var eta = TimeSpan.FromSeconds((job.BytesTotal - job.BytesDone) / (double)job.Rate);
        return "ETA " + (eta.TotalHours >= 1 ? eta.ToString(@"h\:mm\:ss", CultureInfo.InvariantCulture) : eta.ToString(@"m\:ss", CultureInfo.InvariantCulture));
    }

    private static int SafeWidth()
    {
        try
        {
            return Console.WindowWidth > 0 ? Console.WindowWidth : 100;
        }
        catch (IOException)
        {
            return 100;
        }
    }
}
