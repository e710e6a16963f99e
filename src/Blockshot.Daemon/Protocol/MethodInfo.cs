namespace Blockshot.Daemon.Protocol;

/// <summary>One method of the control protocol.</summary>
public sealed class MethodInfo
{
    /// <summary>The method name, e.g. <c>device.add</c>.</summary>
    public string Name { get; init; } = "";

    /// <summary>What it does.</summary>
    public string Description { get; init; } = "";

    /// <summary>Its parameters (by name).</summary>
    public List<ParamInfo> Params { get; init; } = [];

    /// <summary>What it returns.</summary>
    public string Result { get; init; } = "";
}
