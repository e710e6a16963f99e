using Blockshot.Core;
using Blockshot.Daemon.Protocol;

namespace Blockshot.Daemon.Devices;

/// <summary>Reopening the leaf under the same filters while exports stay connected.</summary>
internal sealed partial class Device
{
    /// <summary>
    /// Reopens the leaf (the same file after maintenance, or another one of the same size) and swaps it
    /// in under the filters, while exports stay connected. When the same file cannot be opened again,
    /// the previous settings are tried, and failing that every request fails with EIO until a later
    /// reload succeeds; the error is thrown after the slot runs again.
    /// </summary>
    public async Task ReloadAsync(LeafSpec spec, TimeSpan timeout)
    {
        ControlException? failure = null;
        BlockNode? replaced = null;
        await _control.WaitAsync().ConfigureAwait(false);
        try
        {
            ThrowIfRemoved();
            ThrowIfPinned("reopening its image");
            var oldLeaf = _leaf;
            var samePath = spec.File == _spec.File;
            var fresh = samePath ? null : await LeafOpener.OpenAsync(spec).ConfigureAwait(false);
            if (fresh is not null && fresh.Size != oldLeaf.Size)
            {
                await fresh.DisposeAsync().ConfigureAwait(false);
                throw new ControlException(ControlErrorCodes.InvalidParams,
                    $"{spec.File} holds {fresh.Size} bytes but device {Name} has {oldLeaf.Size}; connected clients would see the wrong size");
            }
            var wasSuspended = _userSuspended;
            if (!wasSuspended)
            {
                try
                {
                    await SuspendSlotAsync(timeout).ConfigureAwait(false);
                }
                catch
                {
                    if (fresh is not null)
                    {
                        await fresh.DisposeAsync().ConfigureAwait(false);
                    }
                    throw;
                }
            }
            try
            {
                var openedSpec = spec;
                if (fresh is null)
                {
                    await FlushQuietlyAsync(oldLeaf).ConfigureAwait(false);
                    await oldLeaf.DisposeAsync().ConfigureAwait(false);
                    (fresh, openedSpec, failure) = await ReopenOrFailAsync(spec, _spec, oldLeaf.Size).ConfigureAwait(false);
                }
                else
                {
                    replaced = oldLeaf;
                }
                ReplaceLocked(_filters, fresh, openedSpec);
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
        if (replaced is not null)
        {
            await FlushQuietlyAsync(replaced).ConfigureAwait(false);
            await replaced.DisposeAsync().ConfigureAwait(false);
        }
        if (failure is not null)
        {
            throw failure;
        }
    }

    private static async Task<(BlockNode Leaf, LeafSpec Spec, ControlException? Failure)> ReopenOrFailAsync(LeafSpec wanted, LeafSpec previous, long size)
    {
        try
        {
            return (await LeafOpener.OpenAsync(wanted).ConfigureAwait(false), wanted, null);
        }
        catch (ControlException first)
        {
            if (wanted != previous)
            {
                try
                {
                    return (await LeafOpener.OpenAsync(previous).ConfigureAwait(false), previous,
                        new ControlException(first.Code, $"{first.Message}; the device reopened its previous settings", first));
                }
                catch (ControlException)
                {
                    // Fall through: the device fails requests until a reload succeeds.
                }
            }
            return (new FailedNode(size, first.Message), wanted,
                new ControlException(first.Code, $"{first.Message}; requests fail with EIO until a reload succeeds", first));
        }
    }

    private static async Task FlushQuietlyAsync(BlockNode node)
    {
        try
        {
            await node.FlushAsync().ConfigureAwait(false);
        }
        catch (IOException)
        {
            // A failing leaf is being replaced; its flush error changes nothing about the swap.
        }
    }
}
