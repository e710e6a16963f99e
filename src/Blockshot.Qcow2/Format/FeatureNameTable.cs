using System.Text;

namespace Blockshot.Qcow2.Format;

/// <summary>Which feature bitmap a feature name belongs to.</summary>
public enum FeatureKind : byte
{
    /// <summary>Incompatible features.</summary>
    Incompatible = 0,

    /// <summary>Compatible features.</summary>
    Compatible = 1,

    /// <summary>Auto-clear features.</summary>
    Autoclear = 2,
}

/// <summary>One entry of the feature name table.</summary>
/// <param name="Kind">The feature bitmap.</param>
/// <param name="Bit">The bit number, 0–63.</param>
/// <param name="Name">The name, at most 46 bytes.</param>
public readonly record struct FeatureName(FeatureKind Kind, byte Bit, string Name);

/// <summary>The feature name table extension: 48-byte entries {type, bit, name[46]}.</summary>
public static class FeatureNameTable
{
    /// <summary>Size of one entry.</summary>
    public const int EntrySize = 48;

    /// <summary>The names of every feature this implementation knows, in the order images carry them.</summary>
    public static IReadOnlyList<FeatureName> Known { get; } =
    [
        new(FeatureKind.Incompatible, 0, "dirty bit"),
        new(FeatureKind.Incompatible, 1, "corrupt bit"),
        new(FeatureKind.Incompatible, 2, "external data file"),
        new(FeatureKind.Incompatible, 3, "compression type"),
        new(FeatureKind.Incompatible, 4, "extended L2 entries"),
        new(FeatureKind.Compatible, 0, "lazy refcounts"),
        new(FeatureKind.Autoclear, 0, "bitmaps"),
        new(FeatureKind.Autoclear, 1, "raw external data"),
    ];

    /// <summary>Parses the extension data; a trailing partial entry is ignored.</summary>
    public static List<FeatureName> Parse(ReadOnlySpan<byte> data)
    {
        var list = new List<FeatureName>(data.Length / EntrySize);
        for (var pos = 0; pos + EntrySize <= data.Length; pos += EntrySize)
        {
            var nameBytes = data.Slice(pos + 2, EntrySize - 2);
            var end = nameBytes.IndexOf((byte)0);
            var name = Encoding.UTF8.GetString(end < 0 ? nameBytes : nameBytes[..end]);
            list.Add(new FeatureName((FeatureKind)data[pos], data[pos + 1], name));
        }
        return list;
    }

    /// <summary>Serializes entries to extension data.</summary>
    public static byte[] Serialize(IEnumerable<FeatureName> names)
    {
        var items = names.ToList();
        var data = new byte[items.Count * EntrySize];
        for (var i = 0; i < items.Count; i++)
        {
            var span = data.AsSpan(i * EntrySize, EntrySize);
            span[0] = (byte)items[i].Kind;
            span[1] = items[i].Bit;
            Encoding.UTF8.GetBytes(items[i].Name, span[2..]);
        }
        return data;
    }

    /// <summary>
    /// Describes the set bits of <paramref name="mask"/> in bitmap <paramref name="kind"/>: names from
    /// <paramref name="table"/> in table order, then any bits the table does not name as one hexadecimal
    /// mask ("Unknown incompatible feature: 100000"), as the reference tool words it.
    /// </summary>
    public static string Describe(IReadOnlyList<FeatureName> table, FeatureKind kind, ulong mask)
    {
        var parts = new List<string>();
        foreach (var f in table)
        {
            if (f.Kind == kind && f.Bit < 64 && (mask & (1UL << f.Bit)) != 0)
            {
                parts.Add(f.Name);
                mask &= ~(1UL << f.Bit);
            }
        }
        if (mask != 0)
        {
            parts.Add($"Unknown {kind.ToString().ToLowerInvariant()} feature: {mask:x}");
        }
        return string.Join(", ", parts);
    }
}
