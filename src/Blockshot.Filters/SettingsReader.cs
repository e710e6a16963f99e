using System.Globalization;

namespace Blockshot.Filters;

/// <summary>Reads text settings against a filter type's declared keys, with messages that name the key.</summary>
internal sealed class SettingsReader
{
    private readonly FilterTypeInfo _info;
    private readonly IReadOnlyDictionary<string, string> _given;
    private readonly Dictionary<string, string> _effective = new(StringComparer.Ordinal);

    public SettingsReader(FilterTypeInfo info, IReadOnlyDictionary<string, string> given)
    {
        _info = info;
        _given = given;
        foreach (var key in given.Keys)
        {
            if (!info.Settings.Any(s => s.Name == key))
            {
                throw Error($"unknown setting '{key}' (known: {string.Join(", ", info.Settings.Select(s => s.Name))})");
            }
        }
    }

    /// <summary>The effective settings: every key, given or default.</summary>
    public IReadOnlyDictionary<string, string> Effective => _effective;

    public string Text(string key)
    {
        var value = _given.TryGetValue(key, out var v) ? v.Trim() : _info.Settings.First(s => s.Name == key).Default;
        _effective[key] = value;
        return value;
    }

    /// <summary>A byte count or rate with an optional binary suffix (K, M, G, T).</summary>
    public long Size(string key)
    {
        var text = Text(key);
        return Quantity.TryParseSize(text, out var value) ? value : throw Error($"{key}: '{text}' is not a size (e.g. 4096, 64K, 100M)");
    }

    public long Count(string key)
    {
        var text = Text(key);
        return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw Error($"{key}: '{text}' is not a whole number of at least 0");
    }

    public double Fraction(string key)
    {
        var text = Text(key);
        return double.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value) && value is >= 0 and <= 1
            ? value
            : throw Error($"{key}: '{text}' is not a number between 0 and 1");
    }

    public FilterSettingsException Error(string text) => new($"{_info.Type}: {text}");
}
