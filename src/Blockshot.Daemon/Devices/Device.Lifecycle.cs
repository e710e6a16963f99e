using Blockshot.Core;

namespace Blockshot.Daemon.Devices;

/// <summary>Flushing and closing the device.</summary>
internal sealed partial class Device
{
    /// <summary>Makes every completed write durable on the leaf (filters bypassed).</summary>
    public async Task FlushAsync()
    {
        await _control.WaitAsync().ConfigureAwait(false);
        try
        {
            if (!_removed && !Spec.ReadOnly)
            {
                await _leaf.FlushAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            _control.Release();
        }
    }

    /// <summary>
    /// Ends the device: releases a suspension, flushes and closes the stack and the leaf. Exports must be
    /// gone and jobs ended first. Flush failures are returned, not thrown, so closing always finishes.
    /// </summary>
    public async Task<Exception?> CloseAsync()
    {
        Exception? flushError = null;
        await _control.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_removed)
            {
                return null;
            }
            _removed = true;
            if (_userSuspended)
            {
                ResumeLocked();
            }
            if (!Spec.ReadOnly)
            {
                try
                {
                    await _leaf.FlushAsync().ConfigureAwait(false);
                }
                catch (Exception e) when (e is IOException)
                {
                    flushError = e;
                }
            }
            _retired.AddRange(_nodes);
            _nodes = [];
            await DisposeRetiredCoreAsync().ConfigureAwait(false);
            var tracker = await ClosePinnedAsync().ConfigureAwait(false);
            await _leaf.DisposeAsync().ConfigureAwait(false);
            if (tracker is not null)
            {
                // After the leaf's last write (a qcow2 image stores its bitmaps at close), so the
                // identity the clean close records is the file's final one.
                await tracker.CloseAsync().ConfigureAwait(false);
            }
            await Slot.DisposeAsync().ConfigureAwait(false);
        }
        finally
        {
            _control.Release();
        }
        return flushError;
    }
}
