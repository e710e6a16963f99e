namespace Blockshot.Daemon.Protocol;

/// <summary>One kind of event notification.</summary>
public sealed class EventTypeInfo
{
    /// <summary>The event name, e.g. <c>device.added</c>.</summary>
    public string Name { get; init; } = "";

    /// <summary>When it is sent and what its data holds.</summary>
    public string Description { get; init; } = "";
}
