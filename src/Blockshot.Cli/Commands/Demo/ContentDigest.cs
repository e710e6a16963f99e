using System.Buffers.Binary;
using System.Security.Cryptography;
using Blockshot.Core;
using Blockshot.Core.Extents;

namespace Blockshot.Cli.Commands.Demo;

/// <summary>
/// A digest of what a disk reads, independent of how it is stored: SHA-256 over every 64 KiB block that
/// holds a non-zero byte, each preceded by its offset. A node is walked by its allocation map, so only
/// the blocks it stores are read (a sparse 1 GiB disk with a few MiB of data takes milliseconds).
/// </summary>
internal static class ContentDigest
{
    /// <summary>The digest of everything <paramref name="node"/> reads.</summary>
    public static async Task<string> OfAsync(BlockNode node)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var block = new byte[DiskModel.BlockBytes];
        var extents = new ExtentList();
        var next = 0L; // blocks before this offset are hashed
        for (var pos = 0L; pos < node.Size;)
        {
            extents.Reset(pos, node.Size - pos);
            await node.GetExtentsAsync(pos, node.Size - pos, extents).ConfigureAwait(false);
            if (extents.End <= pos)
            {
                throw new CliException($"{node.Describe()} described no extents at offset {pos}", ExitCodes.Failure);
            }
            foreach (var e in extents.Items.ToArray())
            {
                if ((e.Flags & AllocationFlags.Zero) != 0)
                {
                    continue;
                }
                for (var at = Math.Max(next, e.Offset / block.Length * block.Length); at < e.End; at += block.Length)
                {
                    var length = (int)Math.Min(block.Length, node.Size - at);
                    block.AsSpan(length).Clear();
                    await node.ReadAsync(at, block.AsMemory(0, length)).ConfigureAwait(false);
                    Add(hash, at, block);
                    next = at + block.Length;
                }
            }
            pos = extents.End;
        }
        return Finish(hash);
    }

    /// <summary>Adds one block unless it is all zeros.</summary>
    public static void Add(IncrementalHash hash, long offset, ReadOnlySpan<byte> block)
    {
        if (!block.ContainsAnyExcept((byte)0))
        {
            return;
        }
        Span<byte> at = stackalloc byte[8];
        BinaryPrimitives.WriteInt64BigEndian(at, offset);
        hash.AppendData(at);
        hash.AppendData(block);
    }

    /// <summary>The digest in hex.</summary>
    public static string Finish(IncrementalHash hash) => Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant();

    /// <summary>The first 16 hex digits: enough to tell contents apart on screen.</summary>
    public static string Short(string digest) => digest[..16] + "…";
}
