namespace Blockshot.Daemon.Protocol;

/// <summary>A filter type and its settings, as <c>describe</c> and <c>filter.types</c> report them.</summary>
public sealed class FilterTypeDescription
{
    /// <summary>The type name.</summary>
    public string Type { get; init; } = "";

    /// <summary>What the filter does.</summary>
    public string Description { get; init; } = "";

    /// <summary>The settings it accepts.</summary>
    public List<ParamInfo> Settings { get; init; } = [];
}
