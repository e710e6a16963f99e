namespace Blockshot.Daemon.Protocol;

/// <summary>What <c>describe</c> reports: the versioned method set and everything a client needs to drive it.</summary>
public sealed class DescribeInfo
{
    /// <summary>The protocol name and major version, e.g. <c>blockshot-control/1</c>.</summary>
    public string Protocol { get; init; } = "";

    /// <summary>The method set's version: the minor number grows when methods or parameters are added.</summary>
    public string Version { get; init; } = "";

    /// <summary>Every method.</summary>
    public List<MethodInfo> Methods { get; init; } = [];

    /// <summary>Every event a subscriber can receive.</summary>
    public List<EventTypeInfo> Events { get; init; } = [];

    /// <summary>Every error code.</summary>
    public List<ErrorCodeInfo> Errors { get; init; } = [];

    /// <summary>The filter types <c>filter.insert</c> accepts.</summary>
    public List<FilterTypeDescription> FilterTypes { get; init; } = [];

    /// <summary>The export types, and whether this build has them.</summary>
    public List<ExportTypeInfo> ExportTypes { get; init; } = [];
}
