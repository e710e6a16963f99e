using System.Text.Json.Nodes;
using Blockshot.Core;
using Blockshot.Daemon.Devices;
using Blockshot.Daemon.Events;
using Blockshot.Daemon.Jobs;
using Microsoft.Extensions.Logging;

namespace Blockshot.Daemon.Mirror;

/// <summary>
/// Copies a live device to a target while writes continue, then (optionally) makes the target the
/// device's leaf — live storage migration. The phases:
/// <list type="number">
/// <item>Insert a <see cref="MirrorFilter"/> right above the leaf: from now on writes are recorded.</item>
/// <item>First pass: copy every allocated extent (holes are skipped on a fresh target), paced and pausable.</item>
/// <item>Switch the filter to active mode (writes go to both sides), then sweep the dirty map until it is empty.</item>
/// <item>Suspend the device, copy what is still dirty, flush the target, and swap the stack: without the mirror
/// filter, over the target (pivot) or over the old leaf. Resume. No layer is left behind.</item>
/// </list>
/// On failure or cancellation the filter is removed and the target closed; the source is untouched.
/// </summary>
internal sealed partial class MirrorJob : Job
{
    private readonly Device _device;
    private readonly MirrorTarget _target;
    private readonly MirrorOptions _options;
    private readonly MirrorState _state;
    private readonly StackEntry _entry;
    private bool _filterInserted;
    private bool _targetReleased;
    private int _sweeps;
    private long _copied;
    private long _skipped;
    private string? _sourceFlushError;

    public MirrorJob(string id, Device device, MirrorTarget target, MirrorOptions options, long speed, EventHub events, ILogger logger)
        : base(id, "mirror", device.Name, speed, events, logger)
    {
        _device = device;
        _target = target;
        _options = options;
        _state = new MirrorState(target.Node, device.Slot.Size, options.Granularity);
        _entry = new StackEntry($"mirror-{id}", new MirrorTemplate(_state, target.Spec.File), id);
    }

    public string Target => _target.Spec.File;

    private TimeSpan SuspendTimeout => _options.SuspendTimeout > TimeSpan.Zero ? _options.SuspendTimeout : TimeSpan.FromSeconds(10);

    /// <summary>
    /// Puts the mirror filter in place (before the job starts, so every write after <c>mirror.start</c>
    /// returns is tracked). On failure the target is closed and nothing is left behind.
    /// </summary>
    public async Task PrepareAsync()
    {
        try
        {
            await _device.InsertFilterAsync(_entry, atBottom: true, SuspendTimeout).ConfigureAwait(false);
            _filterInserted = true;
        }
        catch
        {
            _targetReleased = true;
            await _target.Node.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    protected override async Task<JsonObject?> RunCoreAsync(CancellationToken cancellationToken)
    {
        var size = _device.Slot.Size;
        SetTotal(size);
        await CopyAsync(FirstPassAsync(size, cancellationToken), firstPass: true, paced: true, cancellationToken).ConfigureAwait(false);
        _state.Active = true;
        while (!_state.Dirty.IsEmpty && _sweeps < _options.MaxSweeps)
        {
            AddTotal(_state.Dirty.DirtyBytes);
            await CopyAsync(DirtyRanges(), firstPass: false, paced: true, cancellationToken).ConfigureAwait(false);
            _sweeps++;
        }
        await FinishAsync(cancellationToken).ConfigureAwait(false);
        return new JsonObject
        {
            ["target"] = _target.Spec.File,
            ["pivoted"] = _options.Pivot,
            ["bytes-copied"] = _copied,
            ["bytes-skipped"] = _skipped,
            ["sweeps"] = _sweeps,
            ["target-created"] = _target.Created,
            ["source-flush-error"] = _sourceFlushError,
        };
    }

    protected override async Task CleanupAsync()
    {
        if (_filterInserted)
        {
            await _device.RemoveFilterAsync(_entry.Name, Id, SuspendTimeout).ConfigureAwait(false);
            _filterInserted = false;
        }
        if (!_targetReleased)
        {
            _targetReleased = true;
            await _target.Node.DisposeAsync().ConfigureAwait(false);
        }
    }

    // With the device suspended: copy the last dirty chunks, flush the target, swap the stack.
    private async Task FinishAsync(CancellationToken cancellationToken)
    {
        BlockNode? oldLeaf = null;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await _device.RunSuspendedAsync(SuspendTimeout, async () =>
                {
                    while (!_state.Dirty.IsEmpty)
                    {
                        AddTotal(_state.Dirty.DirtyBytes);
                        await CopyAsync(DirtyRanges(), firstPass: false, paced: false, cancellationToken).ConfigureAwait(false);
                    }
                    await _target.Node.FlushAsync().ConfigureAwait(false);
                    var filters = _device.Filters.Remove(_entry);
                    if (_options.Pivot)
                    {
                        oldLeaf = _device.Leaf;
                        _device.ReplaceLocked(filters, _target.Node, _device.Spec with { File = _target.Spec.File, Format = "raw" });
                        _targetReleased = true;
                    }
                    else
                    {
                        _device.ReplaceLocked(filters, _device.Leaf, _device.Spec);
                    }
                    _filterInserted = false;
                }).ConfigureAwait(false);
                break;
            }
            catch (Protocol.ControlException e) when (e.Code == Protocol.ControlErrorCodes.Timeout && attempt < 3)
            {
                // Requests did not drain in time; the device runs on and the final phase is tried again.
                await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt), cancellationToken).ConfigureAwait(false);
            }
        }
        if (oldLeaf is not null)
        {
            // The device runs on the target now; a failing flush of the image it left changes nothing for it.
            try
            {
                await oldLeaf.FlushAsync().ConfigureAwait(false);
            }
            catch (IOException e)
            {
                _sourceFlushError = e.Message;
            }
            await oldLeaf.DisposeAsync().ConfigureAwait(false);
        }
        if (!_targetReleased)
        {
            _targetReleased = true;
            await _target.Node.DisposeAsync().ConfigureAwait(false);
        }
    }
}
