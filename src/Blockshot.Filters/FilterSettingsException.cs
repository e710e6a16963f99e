namespace Blockshot.Filters;

/// <summary>A filter type is unknown or its settings are wrong; the message says which and why.</summary>
public sealed class FilterSettingsException(string message, bool unknownType = false) : ArgumentException(message)
{
    /// <summary>True when the type itself is unknown.</summary>
    public bool UnknownType { get; } = unknownType;
}
