namespace Blockshot.Filters;

/// <summary>One setting a filter type accepts.</summary>
/// <param name="Name">The key, e.g. <c>bps</c>.</param>
/// <param name="Description">What it means and what values it takes.</param>
/// <param name="Default">The value when not given.</param>
public sealed record FilterSettingInfo(string Name, string Description, string Default);
