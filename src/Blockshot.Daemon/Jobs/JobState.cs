namespace Blockshot.Daemon.Jobs;

/// <summary>A job's life: created → running ⇄ paused → completed | failed | cancelled.</summary>
internal enum JobState
{
    Created,
    Running,
    Paused,
    Completed,
    Failed,
    Cancelled,
}
