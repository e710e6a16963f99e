namespace Blockshot.Daemon.Protocol;

/// <summary>One error code of the control protocol.</summary>
public sealed class ErrorCodeInfo
{
    /// <summary>The numeric code.</summary>
    public int Code { get; init; }

    /// <summary>Its stable name.</summary>
    public string Name { get; init; } = "";

    /// <summary>What it means.</summary>
    public string Meaning { get; init; } = "";
}
