using Blockshot.Core;

namespace Blockshot.Filters;

/// <summary>
/// A configured filter that can build filter nodes over any node. A device's stack keeps templates,
/// not nodes: when the stack is rebuilt (a filter removed below this one, the leaf reopened), each
/// template builds a fresh node over the new node beneath, and state that must outlive a rebuild
/// (budgets, counters, dirty maps) lives in the template.
/// </summary>
public abstract class FilterTemplate
{
    /// <summary>Creates a template of <paramref name="type"/> with its effective settings.</summary>
    protected FilterTemplate(string type, IReadOnlyDictionary<string, string> settings)
    {
        ArgumentException.ThrowIfNullOrEmpty(type);
        ArgumentNullException.ThrowIfNull(settings);
        Type = type;
        Settings = settings;
    }

    /// <summary>The filter type, e.g. <c>throttle</c>.</summary>
    public string Type { get; }

    /// <summary>Every setting with its effective value, as text.</summary>
    public IReadOnlyDictionary<string, string> Settings { get; }

    /// <summary>Counters worth showing (requests delayed, faults injected…).</summary>
    public virtual IReadOnlyDictionary<string, long> Counters => new Dictionary<string, long>();

    /// <summary>Builds a filter node over <paramref name="next"/>; the node must not own <paramref name="next"/>.</summary>
    public abstract FilterNode Create(BlockNode next);
}
