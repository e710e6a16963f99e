using System.Buffers.Binary;
using System.Text;

namespace Blockshot.Qcow2.Format;

/// <summary>One header extension: a type and its data, unpadded. Unknown types are kept byte for byte.</summary>
/// <param name="Type">The extension type (<see cref="HeaderExtensionType"/>).</param>
/// <param name="Data">The extension data.</param>
public sealed record HeaderExtension(uint Type, byte[] Data)
{
    /// <summary>Bytes this extension takes on disk: 8-byte prefix plus data padded to 8.</summary>
    public int SerializedLength => 8 + ((Data.Length + 7) & ~7);

    /// <summary>A string extension (backing format, data file name).</summary>
    public static HeaderExtension FromString(uint type, string value) => new(type, Encoding.UTF8.GetBytes(value));

    /// <summary>The data as a string (not NUL-terminated on disk).</summary>
    public string AsString() => Encoding.UTF8.GetString(Data);

    /// <summary>
    /// Parses extensions from <paramref name="area"/>, which starts at the first extension and ends where
    /// extensions must stop (the backing file name, or the end of the first cluster). Stops at the end
    /// marker, or at the end of the area when no marker fits.
    /// </summary>
    public static List<HeaderExtension> ParseAll(ReadOnlySpan<byte> area)
    {
        var list = new List<HeaderExtension>();
        var pos = 0;
        while (pos + 8 <= area.Length)
        {
            var type = BinaryPrimitives.ReadUInt32BigEndian(area[pos..]);
            var length = BinaryPrimitives.ReadUInt32BigEndian(area[(pos + 4)..]);
            pos += 8;
            if (type == HeaderExtensionType.End)
            {
                return list;
            }
            if (length > (uint)(area.Length - pos))
            {
                Qcow2Error.Invalid($"header extension 0x{type:x8} too large ({length} bytes)");
            }
            list.Add(new HeaderExtension(type, area.Slice(pos, (int)length).ToArray()));
            pos += (int)((length + 7) & ~7u);
        }
        return list;
    }

    /// <summary>Writes <paramref name="extensions"/> and the end marker; returns the bytes written.</summary>
    public static int WriteAll(Span<byte> area, IEnumerable<HeaderExtension> extensions)
    {
        var pos = 0;
        foreach (var ext in extensions)
        {
            var total = ext.SerializedLength;
            if (pos + total + 8 > area.Length)
            {
                Qcow2Error.Argument("header extensions do not fit in the first cluster");
            }
            area.Slice(pos, total).Clear();
            BinaryPrimitives.WriteUInt32BigEndian(area[pos..], ext.Type);
            BinaryPrimitives.WriteUInt32BigEndian(area[(pos + 4)..], (uint)ext.Data.Length);
            ext.Data.CopyTo(area[(pos + 8)..]);
            pos += total;
        }
        if (pos + 8 > area.Length)
        {
            Qcow2Error.Argument("header extensions do not fit in the first cluster");
        }
        area.Slice(pos, 8).Clear();
        return pos + 8;
    }

    /// <summary>Bytes <see cref="WriteAll"/> needs, end marker included.</summary>
    public static int MeasureAll(IEnumerable<HeaderExtension> extensions)
    {
        var total = 8;
        foreach (var ext in extensions)
        {
            total += ext.SerializedLength;
        }
        return total;
    }

    /// <inheritdoc/>
    public bool Equals(HeaderExtension? other) =>
        other is not null && other.Type == Type && other.Data.AsSpan().SequenceEqual(Data);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Type, Data.Length);
}
