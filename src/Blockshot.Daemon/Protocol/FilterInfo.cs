namespace Blockshot.Daemon.Protocol;

/// <summary>A filter in a device's stack.</summary>
public sealed class FilterInfo
{
    /// <summary>The filter's name in the stack (the type unless named otherwise).</summary>
    public string Name { get; init; } = "";

    /// <summary>The filter type.</summary>
    public string Type { get; init; } = "";

    /// <summary>Every setting with its effective value.</summary>
    public Dictionary<string, string> Settings { get; init; } = [];

    /// <summary>Counters (requests delayed, faults injected…).</summary>
    public Dictionary<string, long> Counters { get; init; } = [];

    /// <summary>The job that owns the filter (a mirror), if any; such filters go away with their job.</summary>
    public string? Job { get; init; }
}
