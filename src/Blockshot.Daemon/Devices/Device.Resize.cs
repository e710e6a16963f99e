using Blockshot.Core;
using Blockshot.Daemon.Protocol;

namespace Blockshot.Daemon.Devices;

/// <summary>Growing or shrinking the image under a running device.</summary>
internal sealed partial class Device
{
    /// <summary>
    /// Resizes the device's image (a raw file or a qcow2 image) with its requests drained. The request
    /// goes down the whole stack, so change tracking sees it (and starts a new generation) and a filter
    /// that cannot follow a resize refuses it. Refused while the device has snapshots.
    /// </summary>
    public async Task ResizeAsync(long newSize, TimeSpan timeout)
    {
        if (newSize <= 0)
        {
            throw new ControlException(ControlErrorCodes.InvalidParams, $"size {newSize} must be positive");
        }
        if (Spec.ReadOnly)
        {
            throw new ControlException(ControlErrorCodes.InvalidState, $"device {Name} is read-only");
        }
        ThrowIfSnapshots(); // before suspending the clients for nothing
        if (!Leaf.Capabilities.Has(NodeFeatures.Resize))
        {
            throw new ControlException(ControlErrorCodes.InvalidParams, $"device {Name} ({Spec.Format}, {Spec.File}) cannot be resized");
        }
        await RunSuspendedAsync(timeout, async () =>
        {
            ThrowIfSnapshots(); // again with requests drained: a take may have come in between
            try
            {
                await Slot.Current.ResizeAsync(newSize).ConfigureAwait(false);
            }
            catch (BlockException e)
            {
                throw new ControlException(e.Error is BlockError.Invalid or BlockError.NotSupported ? ControlErrorCodes.InvalidParams : ControlErrorCodes.IoError,
                    $"device {Name} was not resized: {e.Message}", e);
            }
            catch (IOException e)
            {
                throw new ControlException(ControlErrorCodes.IoError, $"device {Name} was not resized: {e.Message}", e);
            }
        }).ConfigureAwait(false);
    }

    private void ThrowIfSnapshots()
    {
        if (Cbw is not null)
        {
            throw new ControlException(ControlErrorCodes.InUse, $"device {Name} has snapshots; destroy them before resizing it");
        }
    }
}
