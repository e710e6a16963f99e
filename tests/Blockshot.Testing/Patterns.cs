namespace Blockshot.Testing;

/// <summary>Deterministic test data.</summary>
public static class Patterns
{
    /// <summary>Bytes that depend on the seed and their absolute offset, so misplaced data is caught.</summary>
    public static void Fill(Span<byte> buffer, long offset, int seed)
    {
        for (var i = 0; i < buffer.Length; i++)
        {
            var x = (ulong)(offset + i) * 0x9E3779B97F4A7C15UL ^ (ulong)seed * 0xBF58476D1CE4E5B9UL;
            buffer[i] = (byte)((x >> 29) ^ (x >> 47) ^ (byte)seed);
        }
    }

    /// <summary>A new array of <see cref="Fill"/> data.</summary>
    public static byte[] Make(int length, long offset, int seed)
    {
        var data = new byte[length];
        Fill(data, offset, seed);
        return data;
    }

    /// <summary>Index of the first differing byte, or -1 (arrays, so callers may await inside the call).</summary>
    public static int FirstDifference(byte[] a, byte[] b) => FirstDifference(a.AsSpan(), b.AsSpan());

    /// <summary>Index of the first differing byte, or -1.</summary>
    public static int FirstDifference(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        var n = Math.Min(a.Length, b.Length);
        var i = a[..n].CommonPrefixLength(b[..n]);
        return i < n ? i : a.Length == b.Length ? -1 : n;
    }
}
