using System.Collections.Immutable;
using Blockshot.Core;
using Blockshot.Daemon.Protocol;

namespace Blockshot.Daemon.Devices;

/// <summary>Live changes to the stack: filters in and out, and the one place a new stack is built and swapped in.</summary>
internal sealed partial class Device
{
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
        if (!ReferenceEquals(leaf, _leaf) && (_cbw is not null || _tracker is not null))
        {
            throw new ControlException(ControlErrorCodes.InUse,
                $"device {Name} has snapshots or change tracking, which stay bound to its image; destroy them (and cbt detach) first");
        }
        var (top, nodes) = Build(filters, PinnedTopOver(leaf));
        Slot.Replace(top);
        _retired.AddRange(_nodes);
        _nodes = nodes;
        _filters = filters;
        Volatile.Write(ref _leaf, leaf);
        Volatile.Write(ref _spec, spec);
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
}
