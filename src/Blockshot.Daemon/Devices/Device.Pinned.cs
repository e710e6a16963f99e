using Blockshot.Core;
using Blockshot.Daemon.ChangeTracking;
using Blockshot.Daemon.Protocol;
using Blockshot.Daemon.SnapshotSets;
using Blockshot.Tracking;

namespace Blockshot.Daemon.Devices;

/// <summary>
/// The pinned part of the stack: filters that hold state a rebuild must not lose and that name their
/// node below for good, so they are built once and kept. Change tracking sits right above the leaf (it
/// sees every write that reaches the device, including CBW's pass-through); copy-before-write sits above
/// it while the device has snapshots. The user's filters (templates) are rebuilt over the pinned top.
/// </summary>
internal sealed partial class Device
{
    // Guarded by _control for writes; read without it (published with Volatile).
    private TrackerAttachment? _tracker;
    private CbwAttachment? _cbw;

    /// <summary>Change tracking, when attached.</summary>
    public TrackerAttachment? Tracker => Volatile.Read(ref _tracker);

    /// <summary>The copy-before-write filter with its storage, while the device has snapshots.</summary>
    public CbwAttachment? Cbw => Volatile.Read(ref _cbw);

    /// <summary>The node the user's filters are built over: CBW, else the tracker, else <paramref name="leaf"/>.</summary>
    private BlockNode PinnedTopOver(BlockNode leaf) => (BlockNode?)_cbw?.Filter ?? (BlockNode?)_tracker?.Tracker ?? leaf;

    /// <summary>Refuses an operation that would put another leaf under the pinned filters.</summary>
    public void ThrowIfPinned(string operation)
    {
        if (Cbw is not null || Tracker is not null)
        {
            throw new ControlException(ControlErrorCodes.InUse,
                $"device {Name} has {(Cbw is not null ? "snapshots" : "change tracking")}; {operation} needs them gone first (destroy the snapshots, cbt detach)");
        }
    }

    /// <summary>Attaches change tracking above the leaf, beneath every other filter, while clients stay connected.</summary>
    public async Task AttachTrackerAsync(TrackerOptions options, TimeSpan timeout, string? qcow2Bitmap)
    {
        await _control.WaitAsync().ConfigureAwait(false);
        try
        {
            ThrowIfRemoved();
            if (_tracker is not null)
            {
                throw new ControlException(ControlErrorCodes.AlreadyExists, $"device {Name} is already tracked");
            }
            if (_cbw is not null)
            {
                throw new ControlException(ControlErrorCodes.InvalidState,
                    $"device {Name} has snapshots; attach tracking before the first snapshot (it must sit beneath copy-before-write)");
            }
            if (Spec.ReadOnly)
            {
                throw new ControlException(ControlErrorCodes.InvalidState, $"device {Name} is read-only; there is nothing to track");
            }
            ChangeTracker tracker;
            try
            {
                tracker = await ChangeTracker.OpenAsync(_leaf, options).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
            {
                throw new ControlException(ControlErrorCodes.IoError, $"cannot attach tracking to {Name}: {e.Message}", e);
            }
            var attachment = new TrackerAttachment(tracker, options, qcow2Bitmap);
            await RestackAsync(() => Volatile.Write(ref _tracker, attachment), timeout, () => Volatile.Write(ref _tracker, null)).ConfigureAwait(false);
        }
        finally
        {
            _control.Release();
        }
    }

    /// <summary>Detaches change tracking (a clean close of its sidecar).</summary>
    public async Task DetachTrackerAsync(TimeSpan timeout)
    {
        TrackerAttachment detached;
        await _control.WaitAsync().ConfigureAwait(false);
        try
        {
            ThrowIfRemoved();
            detached = _tracker ?? throw new ControlException(ControlErrorCodes.NotFound, $"device {Name} is not tracked");
            if (_cbw is not null)
            {
                throw new ControlException(ControlErrorCodes.InvalidState, $"device {Name} has snapshots; destroy them before detaching tracking");
            }
            await RestackAsync(() => Volatile.Write(ref _tracker, null), timeout, () => Volatile.Write(ref _tracker, detached)).ConfigureAwait(false);
            if (!Spec.ReadOnly)
            {
                await _leaf.FlushAsync().ConfigureAwait(false);
            }
            await detached.CloseAsync().ConfigureAwait(false);
        }
        finally
        {
            _control.Release();
        }
    }

    // Caller holds _control. Suspends (unless a user has), applies the change, rebuilds the user's
    // filters over the new pinned top, resumes; undoes the change when the drain times out.
    private async Task RestackAsync(Action change, TimeSpan timeout, Action undo)
    {
        change();
        try
        {
            await SwapLockedAsync(_filters, _leaf, _spec, timeout).ConfigureAwait(false);
        }
        catch
        {
            undo();
            throw;
        }
    }

    /// <summary>With the slot suspended: rebuilds the user's filters over the current pinned top.</summary>
    private void RestackLocked() => ReplaceLocked(_filters, _leaf, _spec);

    // Closing, after the leaf's flush: CBW (clean close of a persistent log). Returns the tracker, for its
    // clean close once the leaf is closed.
    private async Task<TrackerAttachment?> ClosePinnedAsync()
    {
        if (Interlocked.Exchange(ref _cbw, null) is { } cbw)
        {
            await cbw.CloseAsync(clean: true).ConfigureAwait(false);
        }
        return Interlocked.Exchange(ref _tracker, null);
    }
}
