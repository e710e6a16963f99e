using System.Globalization;

namespace Blockshot.Filters;

/// <summary>Sizes and rates as text: <c>4096</c>, <c>64K</c>, <c>100M</c>, <c>1G</c>, <c>2GiB</c> (binary units).</summary>
public static class Quantity
{
    /// <summary>Parses a non-negative size with an optional binary suffix.</summary>
    public static bool TryParseSize(string text, out long bytes)
    {
        bytes = 0;
        ArgumentNullException.ThrowIfNull(text);
        var s = text.Trim();
        if (s.EndsWith("/s", StringComparison.Ordinal))
        {
            s = s[..^2];
        }
        if (s.EndsWith("iB", StringComparison.OrdinalIgnoreCase))
        {
            s = s[..^2];
        }
        else if (s.EndsWith('B') || s.EndsWith('b'))
        {
            s = s[..^1];
        }
        var shift = 0;
        if (s.Length > 0 && char.IsLetter(s[^1]))
        {
            shift = char.ToUpperInvariant(s[^1]) switch
            {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => -1,
            };
            if (shift < 0)
            {
                return false;
            }
            s = s[..^1];
        }
        if (!decimal.TryParse(s, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value) || value < 0)
        {
            return false;
        }
        var result = value * (1L << shift);
        if (result > long.MaxValue || result != decimal.Truncate(result))
        {
            return false;
        }
        bytes = (long)result;
        return true;
    }
}
