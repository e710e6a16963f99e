namespace Blockshot.Daemon.Protocol;

/// <summary>One parameter of a method.</summary>
public sealed class ParamInfo
{
    /// <summary>The parameter name.</summary>
    public string Name { get; init; } = "";

    /// <summary>string, integer, number, boolean, object or string-array.</summary>
    public string Type { get; init; } = "";

    /// <summary>True when the parameter must be given.</summary>
    public bool Required { get; init; }

    /// <summary>What it means.</summary>
    public string Description { get; init; } = "";

    /// <summary>The value when not given, as text.</summary>
    public string? Default { get; init; }
}
