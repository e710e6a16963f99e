using System.Security.Cryptography;
using Blockshot.Core.Extents;

namespace Blockshot.Cli.Commands.Demo;

/// <summary>
/// What a disk should contain, kept in memory as the 64 KiB blocks the demo wrote (everything else reads
/// as zeros). Its <see cref="Digest"/> is the same function <see cref="ContentDigest"/> computes over a
/// node, so "the snapshot reads the take-time data" is one comparison of two short strings.
/// </summary>
internal sealed class DiskModel
{
    /// <summary>The granularity of the model and of the digest.</summary>
    public const int BlockBytes = 64 << 10;

    private readonly SortedDictionary<long, byte[]> _blocks = [];

    public DiskModel(long size) => Size = size;

    public long Size { get; }

    /// <summary>Records a write of <paramref name="data"/> at <paramref name="offset"/>.</summary>
    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            var start = offset / BlockBytes * BlockBytes;
            if (!_blocks.TryGetValue(start, out var block))
            {
                _blocks[start] = block = new byte[BlockBytes];
            }
            var at = (int)(offset - start);
            var n = Math.Min(BlockBytes - at, data.Length);
            data[..n].CopyTo(block.AsSpan(at));
            offset += n;
            data = data[n..];
        }
    }

    /// <summary>A copy that later writes do not change (the content at a snapshot's take).</summary>
    public DiskModel Clone()
    {
        var copy = new DiskModel(Size);
        foreach (var (offset, block) in _blocks)
        {
            copy._blocks[offset] = (byte[])block.Clone();
        }
        return copy;
    }

    /// <summary>The content digest (see <see cref="ContentDigest"/>).</summary>
    public string Digest()
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var (offset, block) in _blocks)
        {
            ContentDigest.Add(hash, offset, block);
        }
        return ContentDigest.Finish(hash);
    }

    /// <summary>
    /// The blocks of <paramref name="blockSize"/> that the ranges touch, merged into runs: what change
    /// tracking must report for those writes.
    /// </summary>
    public static List<Extent> Blocks(IEnumerable<(long Offset, long Length)> ranges, int blockSize)
    {
        var runs = new List<Extent>();
        foreach (var (offset, length) in ranges.OrderBy(r => r.Offset))
        {
            var start = offset / blockSize * blockSize;
            var end = (offset + length + blockSize - 1) / blockSize * blockSize;
            if (runs.Count > 0 && runs[^1].End >= start)
            {
                var last = runs[^1];
                runs[^1] = last with { Length = Math.Max(last.End, end) - last.Offset };
            }
            else
            {
                runs.Add(new Extent(start, end - start, 1));
            }
        }
        return runs;
    }
}
