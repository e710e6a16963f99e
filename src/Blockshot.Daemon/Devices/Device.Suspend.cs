using Blockshot.Core;
using Blockshot.Daemon.Protocol;

namespace Blockshot.Daemon.Devices;

/// <summary>Suspending and resuming: user suspensions (with an optional hold time) and work run while suspended.</summary>
internal sealed partial class Device
{
    private CancellationTokenSource? _autoResume;

    /// <summary>
    /// Drains requests in flight and holds new ones until <see cref="ResumeAsync"/>, or until
    /// <paramref name="hold"/> runs out when given.
    /// </summary>
    public async Task SuspendAsync(TimeSpan timeout, TimeSpan? hold)
    {
        await _control.WaitAsync().ConfigureAwait(false);
        try
        {
            ThrowIfRemoved();
            if (_userSuspended)
            {
                throw new ControlException(ControlErrorCodes.InvalidState, $"device {Name} is already suspended");
            }
            await SuspendSlotAsync(timeout).ConfigureAwait(false);
            _userSuspended = true;
            if (hold is { } limit)
            {
                _autoResume = new CancellationTokenSource();
                _ = AutoResumeAsync(limit, _autoResume.Token);
            }
        }
        finally
        {
            _control.Release();
        }
    }

    /// <summary>Releases a suspension: held requests run on the current stack.</summary>
    public async Task ResumeAsync()
    {
        await _control.WaitAsync().ConfigureAwait(false);
        try
        {
            ThrowIfRemoved();
            if (!_userSuspended)
            {
                throw new ControlException(ControlErrorCodes.InvalidState, $"device {Name} is not suspended");
            }
            ResumeLocked();
        }
        finally
        {
            _control.Release();
        }
        await DisposeRetiredAsync().ConfigureAwait(false);
    }

    /// <summary>Ends a user's suspension if there is one (before exports are torn down or the daemon stops).</summary>
    public async Task ResumeIfSuspendedAsync()
    {
        await _control.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_userSuspended && !_removed)
            {
                ResumeLocked();
            }
        }
        finally
        {
            _control.Release();
        }
        await DisposeRetiredAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Suspends the slot (unless a user already has), runs <paramref name="work"/> with no request in
    /// the stack, and resumes. Inside, <see cref="ReplaceLocked"/> may swap the stack.
    /// </summary>
    public async Task RunSuspendedAsync(TimeSpan timeout, Func<Task> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        await _control.WaitAsync().ConfigureAwait(false);
        try
        {
            ThrowIfRemoved();
            var wasSuspended = _userSuspended;
            if (!wasSuspended)
            {
                await SuspendSlotAsync(timeout).ConfigureAwait(false);
            }
            try
            {
                await work().ConfigureAwait(false);
            }
            finally
            {
                if (!wasSuspended)
                {
                    Slot.Resume();
                }
            }
        }
        finally
        {
            _control.Release();
        }
        await DisposeRetiredAsync().ConfigureAwait(false);
    }

    private async Task SuspendSlotAsync(TimeSpan timeout)
    {
        try
        {
            await Slot.SuspendAsync(timeout).ConfigureAwait(false);
        }
        catch (TimeoutException e)
        {
            throw new ControlException(ControlErrorCodes.Timeout, e.Message, e);
        }
    }

    private void ResumeLocked()
    {
        _autoResume?.Cancel();
        _autoResume?.Dispose();
        _autoResume = null;
        _userSuspended = false;
        Slot.Resume();
    }

    private async Task AutoResumeAsync(TimeSpan hold, CancellationToken token)
    {
        try
        {
            await Task.Delay(hold, token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        await _control.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            if (token.IsCancellationRequested || !_userSuspended || _removed)
            {
                return;
            }
            ResumeLocked();
        }
        finally
        {
            _control.Release();
        }
        await DisposeRetiredAsync().ConfigureAwait(false);
        AutoResumed?.Invoke(this);
    }
}
