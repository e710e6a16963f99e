using Blockshot.Daemon.Protocol;

namespace Blockshot.Daemon.Jobs;

/// <summary>
/// The jobs of the daemon, running and finished. Finished jobs stay listed (for their result or error)
/// until dismissed; beyond <see cref="MaxFinished"/> the oldest finished ones are forgotten.
/// </summary>
internal sealed class JobManager
{
    public const int MaxFinished = 64;

    // Guards _jobs and _next.
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Job> _jobs = new(StringComparer.Ordinal);
    private long _next;

    /// <summary>A fresh id (<c>job-N</c>), or checks that <paramref name="wanted"/> is free.</summary>
    public string NewId(string? wanted)
    {
        lock (_lock)
        {
            if (wanted is not null)
            {
                if (_jobs.ContainsKey(wanted))
                {
                    throw new ControlException(ControlErrorCodes.AlreadyExists, $"a job with id {wanted} exists");
                }
                return wanted;
            }
            string id;
            do
            {
                id = $"job-{++_next}";
            }
            while (_jobs.ContainsKey(id));
            return id;
        }
    }

    /// <summary>Registers and starts <paramref name="job"/>.</summary>
    public void Start(Job job)
    {
        lock (_lock)
        {
            if (!_jobs.TryAdd(job.Id, job))
            {
                throw new ControlException(ControlErrorCodes.AlreadyExists, $"a job with id {job.Id} exists");
            }
            Trim();
        }
        job.Start();
    }

    public Job Get(string id)
    {
        lock (_lock)
        {
            return _jobs.TryGetValue(id, out var job) ? job : throw new ControlException(ControlErrorCodes.NotFound, $"no job with id {id}");
        }
    }

    public IReadOnlyList<Job> List()
    {
        lock (_lock)
        {
            return [.. _jobs.Values.OrderBy(j => j.Created).ThenBy(j => j.Id, StringComparer.Ordinal)];
        }
    }

    /// <summary>Forgets a finished job.</summary>
    public void Dismiss(string id)
    {
        lock (_lock)
        {
            var job = _jobs.TryGetValue(id, out var j) ? j : throw new ControlException(ControlErrorCodes.NotFound, $"no job with id {id}");
            if (!job.IsFinished)
            {
                throw new ControlException(ControlErrorCodes.InvalidState, $"job {id} is {Job.Name(job.State)}; only a finished job can be dismissed");
            }
            _jobs.Remove(id);
        }
    }

    /// <summary>Cancels every unfinished job and waits until they have ended.</summary>
    public async Task CancelAllAsync()
    {
        var running = List().Where(j => !j.IsFinished).ToList();
        foreach (var job in running)
        {
            try
            {
                job.Cancel();
            }
            catch (ControlException)
            {
                // It ended meanwhile.
            }
        }
        await Task.WhenAll(running.Select(j => j.Finished)).ConfigureAwait(false);
    }

    private void Trim()
    {
        var finished = _jobs.Values.Where(j => j.IsFinished).OrderBy(j => j.Created).ToList();
        for (var i = 0; i < finished.Count - MaxFinished; i++)
        {
            _jobs.Remove(finished[i].Id);
        }
    }
}
