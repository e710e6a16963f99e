namespace Blockshot.Daemon.Config;

/// <summary>A filter of a configured device.</summary>
/// <param name="Where">Its JSON path in the file.</param>
/// <param name="Type">Filter type.</param>
/// <param name="Name">Name in the stack; null = the type.</param>
/// <param name="Settings">Settings as text.</param>
public sealed record FilterConfig(string Where, string Type, string? Name, IReadOnlyDictionary<string, string> Settings);
