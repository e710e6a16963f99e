namespace Blockshot.Cli.Commands.Image;

/// <summary>
/// A <c>-o name=value,name=value</c> list as the reference tool takes it: several <c>-o</c> add up, a
/// doubled comma is a literal comma, and a name alone means <c>on</c>.
/// </summary>
internal sealed class OptionList
{
    private readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);

    /// <summary>Parses every <c>-o</c> argument given.</summary>
    public static OptionList Parse(IEnumerable<string>? arguments)
    {
        var list = new OptionList();
        foreach (var argument in arguments ?? [])
        {
            foreach (var item in Split(argument))
            {
                if (item.Length == 0)
                {
                    continue;
                }
                var eq = item.IndexOf('=', StringComparison.Ordinal);
                var (name, value) = eq < 0 ? (item, "on") : (item[..eq], item[(eq + 1)..]);
                if (name.Length == 0)
                {
                    throw new CliException($"invalid option '{item}' in -o (expected name=value)", ExitCodes.Usage);
                }
                list._values[name] = value;
            }
        }
        return list;
    }

    /// <summary>True when nothing was given.</summary>
    public bool IsEmpty => _values.Count == 0;

    /// <summary>The names given, in no particular order.</summary>
    public IEnumerable<string> Names => _values.Keys;

    /// <summary>The value of <paramref name="name"/>, or null; marks it as understood.</summary>
    public string? Get(string name)
    {
        _used.Add(name);
        return _values.TryGetValue(name, out var v) ? v : null;
    }

    /// <summary>An on/off option (on, off, true, false, yes, no).</summary>
    public bool? GetBool(string name)
    {
        var v = Get(name);
        return v switch
        {
            null => null,
            "on" or "true" or "yes" => true,
            "off" or "false" or "no" => false,
            _ => throw new CliException($"Parameter '{name}' expects 'on' or 'off' (got '{v}')", ExitCodes.Usage),
        };
    }

    /// <summary>A size option (<c>64k</c>, <c>1M</c>, plain bytes).</summary>
    public long? GetSize(string name)
    {
        var v = Get(name);
        if (v is null)
        {
            return null;
        }
        return SizeText.TryParse(v, out var bytes)
            ? bytes
            : throw new CliException($"Parameter '{name}' expects a size (got '{v}')", ExitCodes.Usage);
    }

    /// <summary>Fails on any option nobody asked for, naming it as the reference tool does.</summary>
    public void RejectUnknown(string format)
    {
        foreach (var name in _values.Keys)
        {
            if (!_used.Contains(name))
            {
                throw new CliException($"Invalid parameter '{name}' for format {format}", ExitCodes.Usage);
            }
        }
    }

    private static IEnumerable<string> Split(string text)
    {
        var current = new System.Text.StringBuilder();
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == ',')
            {
                if (i + 1 < text.Length && text[i + 1] == ',')
                {
                    current.Append(',');
                    i++;
                    continue;
                }
                yield return current.ToString();
                current.Clear();
                continue;
            }
            current.Append(text[i]);
        }
        yield return current.ToString();
    }
}
