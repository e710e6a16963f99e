using System.Globalization;

namespace Blockshot.Cli;

/// <summary>Sizes as people type and read them: <c>512</c>, <c>64K</c>, <c>1.5G</c>, <c>1 GiB</c>.</summary>
internal static class SizeText
{
    private static readonly string[] Units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

    /// <summary>Parses a size with an optional binary suffix (K, M, G, T, P; KiB…; case-insensitive).</summary>
    public static bool TryParse(string text, out long bytes)
    {
        bytes = 0;
        var s = text.Trim().Replace(" ", "", StringComparison.Ordinal);
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
                'P' => 50,
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

    /// <summary>Formats a byte count with a binary unit, e.g. <c>1.0 GiB</c>.</summary>
    public static string Format(long bytes)
    {
        double value = bytes;
        var unit = 0;
        while (Math.Abs(value) >= 1024 && unit < Units.Length - 1)
        {
            value /= 1024;
            unit++;
        }
        return unit == 0 ? $"{bytes} B" : value.ToString("0.0", CultureInfo.InvariantCulture) + " " + Units[unit];
    }
}
