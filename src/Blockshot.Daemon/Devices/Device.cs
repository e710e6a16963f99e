using System.Collections.Immutable;
using Blockshot.Core;
using Blockshot.Daemon.Protocol;

namespace Blockshot.Daemon.Devices;

/// <summary>
/// A named device: a slot that exports hold, the stack of filters beneath it and the leaf at the
/// bottom. Every change to the stack, the leaf or the suspended state happens under
/// <see cref="_control"/>, one at a time (<c>Device.Stack.cs</c>, <c>Device.Suspend.cs</c>,
/// <c>Device.Reload.cs</c>, <c>Device.Lifecycle.cs</c>); requests flow through the slot
/// without touching it. The export and job names that use the device are guarded by
/// <see cref="_uses"/>.
/// </summary>
internal sealed partial class Device
{
    // Serializes stack changes, suspend/resume, reload and disposal.
    private readonly SemaphoreSlim _control = new(1, 1);

    // Guarded by _control for writes; read without it (published with Volatile).
    private LeafSpec _spec;
    private BlockNode _leaf;
    private ImmutableArray<StackEntry> _filters = [];
    private FilterNode[] _nodes = [];
    private volatile bool _userSuspended;
    private bool _removed;

    // Guards _exports and _jobs.
    private readonly Lock _uses = new();
    private readonly SortedSet<string> _exports = new(StringComparer.Ordinal);
    private readonly SortedSet<string> _jobs = new(StringComparer.Ordinal);

    /// <summary>Creates a device over an opened leaf.</summary>
    public Device(string name, LeafSpec spec, BlockNode leaf)
    {
        Name = name;
        _spec = spec;
        _leaf = leaf;
        Slot = new Slot(leaf, spec.ReadOnly, name);
    }

    /// <summary>The device name.</summary>
    public string Name { get; }

    /// <summary>The slot exports hold.</summary>
    public Slot Slot { get; }

    /// <summary>How the leaf was opened.</summary>
    public LeafSpec Spec => Volatile.Read(ref _spec);

    /// <summary>The leaf node.</summary>
    public BlockNode Leaf => Volatile.Read(ref _leaf);

    /// <summary>The filters, top first.</summary>
    public ImmutableArray<StackEntry> Filters => _filters;

    /// <summary>True while suspended by a user (device.suspend).</summary>
    public bool IsSuspended => _userSuspended;

    /// <summary>Called (outside any lock) when a suspension ends because its hold time ran out.</summary>
    public Action<Device>? AutoResumed { get; set; }

    /// <summary>Names of the exports bound to the device.</summary>
    public IReadOnlyList<string> Exports
    {
        get
        {
            lock (_uses)
            {
                return [.. _exports];
            }
        }
    }

    /// <summary>Ids of the jobs using the device.</summary>
    public IReadOnlyList<string> Jobs
    {
        get
        {
            lock (_uses)
            {
                return [.. _jobs];
            }
        }
    }

    /// <summary>Records an export bound to the device.</summary>
    public void AddExport(string name)
    {
        lock (_uses)
        {
            _exports.Add(name);
        }
    }

    /// <summary>Forgets an export.</summary>
    public void RemoveExport(string name)
    {
        lock (_uses)
        {
            _exports.Remove(name);
        }
    }

    /// <summary>Records a job using the device.</summary>
    public void AddJob(string id)
    {
        lock (_uses)
        {
            _jobs.Add(id);
        }
    }

    /// <summary>Forgets a job.</summary>
    public void RemoveJob(string id)
    {
        lock (_uses)
        {
            _jobs.Remove(id);
        }
    }

    /// <summary>The device as the control protocol reports it.</summary>
    public DeviceInfo ToInfo()
    {
        var spec = Spec;
        var filters = new List<FilterInfo>();
        foreach (var entry in Filters)
        {
            filters.Add(new FilterInfo
            {
                Name = entry.Name,
                Type = entry.Template.Type,
                Settings = new Dictionary<string, string>(entry.Template.Settings),
                Counters = new Dictionary<string, long>(entry.Template.Counters),
                Job = entry.OwnerJob,
            });
        }
        return new DeviceInfo
        {
            Name = Name,
            File = spec.File,
            Format = spec.Format,
            Size = Slot.Size,
            ReadOnly = spec.ReadOnly,
            Suspended = IsSuspended,
            Stack = Slot.Describe(),
            Filters = filters,
            Exports = [.. Exports],
            Jobs = [.. Jobs],
            InFlight = Slot.InFlight,
            Error = Leaf is FailedNode failed ? failed.Reason : null,
        };
    }
}
