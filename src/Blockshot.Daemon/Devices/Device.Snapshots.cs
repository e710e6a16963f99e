using Blockshot.Core;
using Blockshot.Daemon.Protocol;
using Blockshot.Daemon.SnapshotSets;
using Blockshot.Snapshots;

namespace Blockshot.Daemon.Devices;

/// <summary>Snapshot takes and destruction: CBW goes into the pinned stack at a take and out with the last snapshot.</summary>
internal sealed partial class Device
{
    /// <summary>The node CBW is built over (tracking, else the leaf). Only while entered for a take.</summary>
    public BlockNode CbwOriginLocked => (BlockNode?)_tracker?.Tracker ?? _leaf;

    /// <summary>
    /// Holds the device's control for a snapshot take, so no stack change, suspension or close comes
    /// between. Refused while a user holds the device suspended (the take must suspend it itself).
    /// </summary>
    public async Task<IAsyncDisposable> EnterForTakeAsync()
    {
        await _control.WaitAsync().ConfigureAwait(false);
        try
        {
            ThrowIfRemoved();
            if (_userSuspended)
            {
                throw new ControlException(ControlErrorCodes.InvalidState, $"device {Name} is suspended; resume it before taking a snapshot");
            }
        }
        catch
        {
            _control.Release();
            throw;
        }
        return new TakeLease(this);
    }

    /// <summary>
    /// The request for this device's part of a set take: its existing CBW, or <paramref name="fresh"/>
    /// inserted beneath the user's filters (and taken out again if the take fails). Only while entered.
    /// </summary>
    public SnapshotTakeRequest TakeRequestLocked(string name, SnapshotOptions options, CbwAttachment? fresh) =>
        new(Slot, _ => (_cbw ?? fresh ?? throw new InvalidOperationException($"{Name}: no CBW filter prepared")).Filter, name, options)
        {
            Insert = _ =>
            {
                Volatile.Write(ref _cbw, fresh);
                RestackLocked();
            },
            Remove = _ =>
            {
                Volatile.Write(ref _cbw, null);
                RestackLocked();
            },
        };

    /// <summary>
    /// Destroys one snapshot. With its last snapshot gone, CBW leaves the stack (while clients stay
    /// connected) and its storage is released.
    /// </summary>
    public async Task DestroySnapshotAsync(Snapshot snapshot, TimeSpan timeout)
    {
        await _control.WaitAsync().ConfigureAwait(false);
        try
        {
            var cbw = _cbw;
            if (_removed || cbw is null || !cbw.Filter.Snapshots.Contains(snapshot))
            {
                return;
            }
            await cbw.Filter.RemoveSnapshotAsync(snapshot).ConfigureAwait(false);
            if (cbw.Filter.Snapshots.Count == 0)
            {
                await RestackAsync(() => Volatile.Write(ref _cbw, null), timeout, () => Volatile.Write(ref _cbw, cbw)).ConfigureAwait(false);
                await cbw.CloseAsync(clean: false).ConfigureAwait(false);
            }
        }
        finally
        {
            _control.Release();
        }
    }

    /// <summary>Puts CBW reopened from a persistent log into the stack (at device add, before any export).</summary>
    public async Task<CbwAttachment?> ReopenCbwAsync(Func<BlockNode, Task<CbwAttachment>> open, TimeSpan timeout)
    {
        await _control.WaitAsync().ConfigureAwait(false);
        try
        {
            ThrowIfRemoved();
            var cbw = await open(CbwOriginLocked).ConfigureAwait(false);
            if (cbw.Filter.Snapshots.Count == 0)
            {
                await cbw.CloseAsync(clean: false).ConfigureAwait(false);
                return null;
            }
            await RestackAsync(() => Volatile.Write(ref _cbw, cbw), timeout, () => Volatile.Write(ref _cbw, null)).ConfigureAwait(false);
            return cbw;
        }
        finally
        {
            _control.Release();
        }
    }

    private sealed class TakeLease(Device device) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            try
            {
                await device.DisposeRetiredCoreAsync().ConfigureAwait(false);
            }
            finally
            {
                device._control.Release();
            }
        }
    }
}
