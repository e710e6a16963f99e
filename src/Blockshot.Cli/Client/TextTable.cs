using System.Text;

namespace Blockshot.Cli.Client;

/// <summary>A plain text table: a header row, aligned columns, numbers right-aligned.</summary>
internal sealed class TextTable(params string[] headers)
{
    private readonly List<string[]> _rows = [];
    private readonly HashSet<int> _rightAligned = [];

    public int Count => _rows.Count;

    /// <summary>Right-aligns the columns at <paramref name="columns"/>.</summary>
    public TextTable Right(params int[] columns)
    {
        _rightAligned.UnionWith(columns);
        return this;
    }

    public void Add(params string[] cells) => _rows.Add(cells);

    public override string ToString()
    {
        var widths = new int[headers.Length];
        foreach (var row in _rows.Prepend(headers))
        {
            for (var i = 0; i < widths.Length && i < row.Length; i++)
            {
                widths[i] = Math.Max(widths[i], row[i].Length);
            }
        }
        var text = new StringBuilder();
        foreach (var row in _rows.Prepend(headers))
        {
            var line = new StringBuilder();
            for (var i = 0; i < widths.Length; i++)
            {
                var cell = i < row.Length ? row[i] : "";
                var last = i == widths.Length - 1;
                if (i > 0)
                {
                    line.Append("  ");
                }
                line.Append(_rightAligned.Contains(i) ? cell.PadLeft(widths[i]) : last ? cell : cell.PadRight(widths[i]));
            }
            text.AppendLine(line.ToString().TrimEnd());
        }
        return text.ToString().TrimEnd('\n');
    }
}
