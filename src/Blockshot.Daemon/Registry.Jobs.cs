using Blockshot.Daemon.Devices;
using Blockshot.Daemon.Jobs;
using Blockshot.Daemon.Mirror;
using Blockshot.Daemon.Protocol;

namespace Blockshot.Daemon;

/// <summary>Starting jobs on devices.</summary>
internal sealed partial class Registry
{
    /// <summary>Starts a mirror of <paramref name="deviceName"/> to <paramref name="target"/>.</summary>
    public async Task<JobInfo> StartMirrorAsync(string deviceName, string target, bool pivot, long speed, string? id, int granularity)
    {
        if (id is not null)
        {
            CheckName(id, "job");
        }
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            ThrowIfClosing();
            var device = GetLocked(deviceName);
            if (pivot)
            {
                device.ThrowIfPinned("a pivoting mirror");
            }
            foreach (var existing in device.Jobs)
            {
                if (_jobs.Get(existing) is MirrorJob { IsFinished: false })
                {
                    throw new ControlException(ControlErrorCodes.InUse, $"device {deviceName} already has a mirror running ({existing})");
                }
            }
            var jobId = _jobs.NewId(id);
            var size = device.Slot.Size;
            var opened = await MirrorTarget.OpenAsync(target, size, pivot, device.Spec).ConfigureAwait(false);
            var options = new MirrorOptions(pivot, MirrorOptions.GranularityFor(size, granularity));
            var job = new MirrorJob(jobId, device, opened, options, speed, _events, _logger);
            await job.PrepareAsync().ConfigureAwait(false);
            Attach(device, job);
            return job.ToInfo();
        }
        finally
        {
            _lock.Release();
        }
    }

    private void Attach(Device device, Job job)
    {
        device.AddJob(job.Id);
        job.Ended = ended => device.RemoveJob(ended.Id);
        _jobs.Start(job);
    }
}
