using System.Text.Json.Nodes;

namespace Blockshot.Daemon.Protocol;

/// <summary>A job as <c>job.list</c>, <c>job.get</c> and <c>job.wait</c> report it.</summary>
public sealed class JobInfo
{
    /// <summary>The job id.</summary>
    public string Id { get; init; } = "";

    /// <summary>The job type (<c>mirror</c>).</summary>
    public string Type { get; init; } = "";

    /// <summary>The device the job works on.</summary>
    public string Device { get; init; } = "";

    /// <summary>created, running, paused, completed, failed or cancelled.</summary>
    public string State { get; init; } = "";

    /// <summary>Bytes done so far.</summary>
    public long BytesDone { get; init; }

    /// <summary>Bytes to do (may grow, e.g. when a mirror recopies what changed).</summary>
    public long BytesTotal { get; init; }

    /// <summary>The rate limit in bytes per second; 0 means none.</summary>
    public long Speed { get; init; }

    /// <summary>The recent rate in bytes per second.</summary>
    public long Rate { get; init; }

    /// <summary>When the job was created.</summary>
    public DateTimeOffset Created { get; init; }

    /// <summary>When it started running.</summary>
    public DateTimeOffset? Started { get; init; }

    /// <summary>When it ended.</summary>
    public DateTimeOffset? Finished { get; init; }

    /// <summary>Why it failed.</summary>
    public string? Error { get; init; }

    /// <summary>What it produced, once completed (per job type).</summary>
    public JsonObject? Result { get; init; }

    /// <summary>True once the job has ended (completed, failed or cancelled).</summary>
    public bool IsFinished => State is "completed" or "failed" or "cancelled";
}
