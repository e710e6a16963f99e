using System.Diagnostics;
using System.Text.Json.Nodes;
using Blockshot.Daemon.Events;
using Blockshot.Daemon.Protocol;
using Blockshot.Filters.Timing;
using Microsoft.Extensions.Logging;

namespace Blockshot.Daemon.Jobs;

/// <summary>
/// A background job with a state machine, progress in bytes, a rate limit, pause, resume and cancel.
/// A job type implements <see cref="RunCoreAsync"/> and calls <see cref="CheckpointAsync"/> before each
/// unit of work (where it pauses and is paced) and <see cref="AddDone"/> after it. State changes and
/// the rate window are guarded by <see cref="_lock"/>; byte counters are interlocked.
/// </summary>
internal abstract class Job
{
    private static readonly TimeSpan ProgressInterval = TimeSpan.FromMilliseconds(500);

    private readonly Lock _lock = new();
    private readonly EventHub _events;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _cancel = new();
    private readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly RatePacer _pacer;

    // Guarded by _lock.
    private JobState _state = JobState.Created;
    private TaskCompletionSource? _pauseGate;
    private DateTimeOffset? _started;
    private DateTimeOffset? _finishedAt;
    private string? _error;
    private JsonObject? _result;
    private long _rateMark;
    private long _rateMarkTime;
    private long _rate;
    private long _lastProgressEvent;

    private long _bytesDone;
    private long _bytesTotal;
    private long _speed;

    protected Job(string id, string type, string device, long speed, EventHub events, ILogger logger)
    {
        Id = id;
        Type = type;
        Device = device;
        _speed = speed;
        _events = events;
        _logger = logger;
        _pacer = new RatePacer(speed, TimeSpan.FromMilliseconds(100));
        Created = DateTimeOffset.UtcNow;
    }

    public string Id { get; }

    public string Type { get; }

    public string Device { get; }

    public DateTimeOffset Created { get; }

    public JobState State
    {
        get
        {
            lock (_lock)
            {
                return _state;
            }
        }
    }

    public bool IsFinished => State is JobState.Completed or JobState.Failed or JobState.Cancelled;

    /// <summary>Completes when the job has ended, whatever the outcome.</summary>
    public Task Finished => _finished.Task;

    /// <summary>Called once the job has reached its final state, before <see cref="Finished"/> completes.</summary>
    public Action<Job>? Ended { get; set; }

    protected CancellationToken CancellationToken => _cancel.Token;

    /// <summary>Starts the job in the background.</summary>
    public void Start()
    {
        lock (_lock)
        {
            if (_state != JobState.Created)
            {
                throw new InvalidOperationException($"job {Id} was already started");
            }
            _state = JobState.Running;
            _started = DateTimeOffset.UtcNow;
            _rateMarkTime = Stopwatch.GetTimestamp();
        }
        PublishStatus();
        _ = Task.Run(RunAsync);
    }

    public void Pause()
    {
        lock (_lock)
        {
            if (_state != JobState.Running)
            {
                throw new ControlException(ControlErrorCodes.InvalidState, $"job {Id} is {Name(_state)}; only a running job can be paused");
            }
            _state = JobState.Paused;
            _pauseGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        PublishStatus();
    }

    public void Resume()
    {
        lock (_lock)
        {
            if (_state != JobState.Paused)
            {
                throw new ControlException(ControlErrorCodes.InvalidState, $"job {Id} is {Name(_state)}; only a paused job can be resumed");
            }
            _state = JobState.Running;
            _pauseGate!.TrySetResult();
            _pauseGate = null;
        }
        PublishStatus();
    }

    /// <summary>Asks the job to stop; it ends as cancelled once it notices (and has cleaned up).</summary>
    public void Cancel()
    {
        lock (_lock)
        {
            if (_state is JobState.Completed or JobState.Failed or JobState.Cancelled)
            {
                throw new ControlException(ControlErrorCodes.InvalidState, $"job {Id} has already ended ({Name(_state)})");
            }
        }
        _cancel.Cancel();
    }

    public void SetSpeed(long bytesPerSecond)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytesPerSecond);
        Volatile.Write(ref _speed, bytesPerSecond);
        _pacer.SetRate(bytesPerSecond, TimeSpan.FromMilliseconds(100));
    }

    public JobInfo ToInfo()
    {
        lock (_lock)
        {
            return new JobInfo
            {
                Id = Id,
                Type = Type,
                Device = Device,
                State = Name(_state),
                BytesDone = Volatile.Read(ref _bytesDone),
                BytesTotal = Volatile.Read(ref _bytesTotal),
                Speed = Volatile.Read(ref _speed),
                Rate = _state == JobState.Running ? _rate : 0,
                Created = Created,
                Started = _started,
                Finished = _finishedAt,
                Error = _error,
                Result = (JsonObject?)_result?.DeepClone(),
            };
        }
    }

    public static string Name(JobState state) => state.ToString().ToLowerInvariant();

    /// <summary>The job's work; returns its result. Throwing fails the job; cancellation cancels it.</summary>
    protected abstract Task<JsonObject?> RunCoreAsync(CancellationToken cancellationToken);

    /// <summary>Undoes what an unfinished job left (filters, open targets); runs after failure or cancellation.</summary>
    protected virtual Task CleanupAsync() => Task.CompletedTask;

    /// <summary>Waits while paused, then until <paramref name="bytes"/> fit the rate limit (and again while paused meanwhile).</summary>
    protected async ValueTask CheckpointAsync(long bytes, CancellationToken cancellationToken)
    {
        await WhilePausedAsync(cancellationToken).ConfigureAwait(false);
        var now = Stopwatch.GetTimestamp();
        var due = _pacer.Reserve(bytes, now);
        if (due > now)
        {
            await Task.Delay(TimeSpan.FromSeconds((due - now) / (double)Stopwatch.Frequency), cancellationToken).ConfigureAwait(false);
            await WhilePausedAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private async ValueTask WhilePausedAsync(CancellationToken cancellationToken)
    {
        TaskCompletionSource? gate;
        lock (_lock)
        {
            gate = _pauseGate;
        }
        if (gate is not null)
        {
            await gate.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        cancellationToken.ThrowIfCancellationRequested();
    }

    protected void AddTotal(long bytes) => Interlocked.Add(ref _bytesTotal, bytes);

    protected void SetTotal(long bytes) => Volatile.Write(ref _bytesTotal, bytes);

    /// <summary>Counts finished work and publishes progress at a bounded rate.</summary>
    protected void AddDone(long bytes)
    {
        var done = Interlocked.Add(ref _bytesDone, bytes);
        var now = Stopwatch.GetTimestamp();
        JsonObject? progress = null;
        lock (_lock)
        {
            var elapsed = Stopwatch.GetElapsedTime(_rateMarkTime, now);
            if (elapsed >= ProgressInterval)
            {
                _rate = (long)((done - _rateMark) / elapsed.TotalSeconds);
                _rateMark = done;
                _rateMarkTime = now;
            }
            if (Stopwatch.GetElapsedTime(_lastProgressEvent, now) >= ProgressInterval)
            {
                _lastProgressEvent = now;
                progress = new JsonObject
                {
                    ["id"] = Id,
                    ["bytes-done"] = done,
                    ["bytes-total"] = Volatile.Read(ref _bytesTotal),
                    ["rate"] = _rate,
                };
            }
        }
        if (progress is not null)
        {
            _events.Publish(EventNames.JobProgress, progress);
        }
    }

    private async Task RunAsync()
    {
        JsonObject? result = null;
        Exception? failure = null;
        try
        {
            result = await RunCoreAsync(_cancel.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            failure = e;
        }
        var cancelled = failure is OperationCanceledException && _cancel.IsCancellationRequested;
        if (failure is not null)
        {
            try
            {
                await CleanupAsync().ConfigureAwait(false);
            }
            catch (Exception e)
            {
                DaemonLog.JobCleanupFailed(_logger, Id, e);
            }
            if (!cancelled)
            {
                DaemonLog.JobFailed(_logger, Id, failure.Message, failure);
            }
        }
        lock (_lock)
        {
            _state = failure is null ? JobState.Completed : cancelled ? JobState.Cancelled : JobState.Failed;
            _error = failure is null || cancelled ? null : failure.Message;
            _result = result;
            _finishedAt = DateTimeOffset.UtcNow;
            _rate = 0;
            _pauseGate?.TrySetResult();
            _pauseGate = null;
        }
        Ended?.Invoke(this);
        PublishStatus();
        _finished.TrySetResult();
    }

    private void PublishStatus()
    {
        var info = ToInfo();
        _events.Publish(EventNames.JobStatus, new JsonObject
        {
            ["job"] = System.Text.Json.JsonSerializer.SerializeToNode(info, ProtocolJsonContext.Default.JobInfo),
        });
    }
}
