using Blockshot.Filters.Fault;
using Blockshot.Filters.Throttle;

namespace Blockshot.Filters;

/// <summary>The filter types users can insert by name, with their settings.</summary>
public static class FilterCatalog
{
    /// <summary>Every type, in name order.</summary>
    public static IReadOnlyList<FilterTypeInfo> Types { get; } = [FaultTemplate.Info, ThrottleTemplate.Info];

    /// <summary>
    /// Makes a template of <paramref name="type"/> from text settings. Throws
    /// <see cref="FilterSettingsException"/> for an unknown type, an unknown key or a bad value.
    /// </summary>
    public static FilterTemplate Create(string type, IReadOnlyDictionary<string, string> settings)
    {
        ArgumentNullException.ThrowIfNull(type);
        ArgumentNullException.ThrowIfNull(settings);
        return type switch
        {
            "throttle" => ThrottleTemplate.Parse(settings),
            "fault" => FaultTemplate.Parse(settings),
            _ => throw new FilterSettingsException(
                $"unknown filter type '{type}' (known: {string.Join(", ", Types.Select(t => t.Type))})", unknownType: true),
        };
    }
}
