using System.Collections.Immutable;
using Blockshot.Core;
using Blockshot.Daemon.Protocol;

namespace Blockshot.Daemon.Devices;

/// <summary>Live changes to the stack: filters in and out, suspend and resume, reload, disposal.</summary>
internal sealed partial class Device
{
    private CancellationTokenSource? _autoResume;

    // Old nodes a suspended swap left behind, disposed once the slot runs again. Guarded by _control.
    private readonly List<BlockNode> _retired = [];

    /// <summary>Inserts a filter at the top of the stack (or at the bottom, right above the leaf).</summary>
    public async Task InsertFilterAsync(StackEntry entry, bool atBottom, TimeSpan timeout)
    {
        await _control.WaitAsync().ConfigureAwait(false);
        try
        {
            ThrowIfRemoved();
            if (FindFilter(entry.Name) >= 0)
            {
                throw new ControlException(ControlErrorCodes.AlreadyExists, $"device {Name} already has a filter named {entry.Name}");
            }
            var filters = atBottom ? _filters.Add(entry) : _filters.Insert(0, entry);
            await SwapLockedAsync(filters, _leaf, _spec, timeout).ConfigureAwait(false);
        }
        finally
        {
            _control.Release();
        }
    }

    /// <summary>
    /// Removes the filter named <paramref name="name"/>. A filter a job owns is only removed by that
    /// job (<paramref name="asJob"/>).
    /// </summary>
    public async Task<StackEntry> RemoveFilterAsync(string name, string? asJob, TimeSpan timeout)
    {
        await _control.WaitAsync().ConfigureAwait(false);
        try
        {
            ThrowIfRemoved();
            var index = FindFilter(name);
            if (index < 0)
            {
                throw new ControlException(ControlErrorCodes.NotFound, $"device {Name} has no filter named {name}");
            }
            var entry = _filters[index];
            if (entry.OwnerJob is { } owner && owner != asJob)
            {
                throw new ControlException(ControlErrorCodes.InUse, $"filter {name} on {Name} belongs to job {owner}; cancel the job to remove it");
            }
            await SwapLockedAsync(_filters.RemoveAt(index), _leaf, _spec, timeout).ConfigureAwait(false);
            return entry;
        }
        finally
        {
            _control.Release();
        }
    }

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
            var oldLeaf = _leaf;
            var samePath = spec.File == _spec.File;
            var fresh = samePath ? null : LeafOpener.Open(spec);
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
                    (fresh, openedSpec, failure) = ReopenOrFail(spec, _spec, oldLeaf.Size);
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

    /// <summary>
    /// Swaps in a stack of <paramref name="filters"/> over <paramref name="leaf"/>. Only inside
    /// <see cref="RunSuspendedAsync"/> (or the other locked operations here). The replaced filter nodes
    /// are disposed once the slot runs again; the replaced leaf is the caller's to close.
    /// </summary>
    public void ReplaceLocked(ImmutableArray<StackEntry> filters, BlockNode leaf, LeafSpec spec)
    {
        if (!Slot.IsSuspended)
        {
            throw new InvalidOperationException($"{Name}: the stack changes only while the slot is suspended");
        }
        var (top, nodes) = Build(filters, leaf);
        Slot.Replace(top);
        _retired.AddRange(_nodes);
        _nodes = nodes;
        _filters = filters;
        Volatile.Write(ref _leaf, leaf);
        Volatile.Write(ref _spec, spec);
    }

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
            await _leaf.DisposeAsync().ConfigureAwait(false);
            await Slot.DisposeAsync().ConfigureAwait(false);
        }
        finally
        {
            _control.Release();
        }
        return flushError;
    }

    private async Task SwapLockedAsync(ImmutableArray<StackEntry> filters, BlockNode leaf, LeafSpec spec, TimeSpan timeout)
    {
        if (_userSuspended)
        {
            ReplaceLocked(filters, leaf, spec);
        }
        else
        {
            await SuspendSlotAsync(timeout).ConfigureAwait(false);
            try
            {
                ReplaceLocked(filters, leaf, spec);
            }
            finally
            {
                Slot.Resume();
            }
        }
        if (!_userSuspended)
        {
            await DisposeRetiredCoreAsync().ConfigureAwait(false);
        }
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

    private async Task DisposeRetiredAsync()
    {
        await _control.WaitAsync().ConfigureAwait(false);
        try
        {
            if (!_userSuspended)
            {
                await DisposeRetiredCoreAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            _control.Release();
        }
    }

    private async Task DisposeRetiredCoreAsync()
    {
        foreach (var node in _retired)
        {
            await node.DisposeAsync().ConfigureAwait(false);
        }
        _retired.Clear();
    }

    private int FindFilter(string name)
    {
        for (var i = 0; i < _filters.Length; i++)
        {
            if (_filters[i].Name == name)
            {
                return i;
            }
        }
        return -1;
    }

    private void ThrowIfRemoved()
    {
        if (_removed)
        {
            throw new ControlException(ControlErrorCodes.NotFound, $"device {Name} has been removed");
        }
    }

    private static (BlockNode Top, FilterNode[] Nodes) Build(ImmutableArray<StackEntry> filters, BlockNode leaf)
    {
        var nodes = new FilterNode[filters.Length];
        var top = leaf;
        for (var i = filters.Length - 1; i >= 0; i--)
        {
            nodes[i] = filters[i].Template.Create(top);
            top = nodes[i];
        }
        return (top, nodes);
    }

    private static (BlockNode Leaf, LeafSpec Spec, ControlException? Failure) ReopenOrFail(LeafSpec wanted, LeafSpec previous, long size)
    {
        try
        {
            return (LeafOpener.Open(wanted), wanted, null);
        }
        catch (ControlException first)
        {
            if (wanted != previous)
            {
                try
                {
                    return (LeafOpener.Open(previous), previous,
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
