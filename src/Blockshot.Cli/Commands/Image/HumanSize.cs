using System.Globalization;

namespace Blockshot.Cli.Commands.Image;

/// <summary>Sizes as the reference tool prints them in human output: three significant digits, binary units.</summary>
internal static class HumanSize
{
    private static readonly string[] Units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

    /// <summary>
    /// <c>100 MiB</c>, <c>1.5 GiB</c>, <c>224 KiB</c>, <c>0 B</c>: the next unit is used once the value
    /// reaches 1000 of the current one.
    /// </summary>
    public static string Format(long bytes)
    {
        var unit = 0;
        while (unit < Units.Length - 1 && bytes / Math.Pow(1024, unit) >= 1000)
        {
            unit++;
        }
        var value = bytes / Math.Pow(1024, unit);
        return value.ToString("G3", CultureInfo.InvariantCulture) + " " + Units[unit];
    }
}
