using System.Buffers;
using System.IO.Compression;
using Blockshot.Qcow2.Format;

namespace Blockshot.Qcow2.Internal;

/// <summary>Compresses and decompresses whole clusters with the image's compression type.</summary>
internal static class ClusterCompressor
{
    /// <summary>
    /// Compresses <paramref name="cluster"/> into <paramref name="destination"/> (at most the cluster size
    /// minus one byte, as stored compressed data must be smaller than a cluster). Returns the length, or -1
    /// when the data does not shrink enough and should be stored uncompressed.
    /// </summary>
    public static int Compress(CompressionType type, ReadOnlySpan<byte> cluster, Span<byte> destination)
    {
        var limit = Math.Min(destination.Length, cluster.Length - 1);
        if (limit <= 0)
        {
            return -1;
        }
        if (type == CompressionType.Zstd)
        {
            return Zstd.Compress(cluster, destination[..limit]);
        }
        var rented = ArrayPool<byte>.Shared.Rent(cluster.Length + 1024);
        try
        {
            using var output = new MemoryStream(rented, 0, rented.Length, writable: true);
            using (var deflate = new DeflateStream(output, CompressionLevel.Optimal, leaveOpen: true))
            {
                deflate.Write(cluster);
            }
            var n = (int)output.Position;
            if (n > limit)
            {
                return -1;
            }
            rented.AsSpan(0, n).CopyTo(destination);
            return n;
        }
        catch (NotSupportedException)
        {
            // The rented buffer was too small: the data does not compress.
            return -1;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// Decompresses a stored cluster into <paramref name="cluster"/>, which must be filled exactly;
    /// trailing input is ignored. Returns false when the data is damaged or too short.
    /// </summary>
    public static bool Decompress(CompressionType type, byte[] source, int sourceLength, Span<byte> cluster)
    {
        if (type == CompressionType.Zstd)
        {
            return Zstd.DecompressExact(source.AsSpan(0, sourceLength), cluster);
        }
        try
        {
            using var input = new MemoryStream(source, 0, sourceLength, writable: false);
            using var inflate = new DeflateStream(input, CompressionMode.Decompress);
            var filled = 0;
            while (filled < cluster.Length)
            {
                var n = inflate.Read(cluster[filled..]);
                if (n == 0)
                {
                    return false;
                }
                filled += n;
            }
            return true;
        }
        catch (InvalidDataException)
        {
            return false;
        }
    }
}
