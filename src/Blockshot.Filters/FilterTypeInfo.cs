namespace Blockshot.Filters;

/// <summary>A filter type users can insert, and its settings.</summary>
/// <param name="Type">The type name.</param>
/// <param name="Description">What the filter does.</param>
/// <param name="Settings">The settings it accepts.</param>
public sealed record FilterTypeInfo(string Type, string Description, IReadOnlyList<FilterSettingInfo> Settings);
