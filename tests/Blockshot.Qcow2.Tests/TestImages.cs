using Blockshot.Core;
using Blockshot.Core.Extents;

namespace Blockshot.Qcow2.Tests;

/// <summary>Helpers to build images with the peer tools and to read nodes whole.</summary>
internal static class TestImages
{
    public static bool LongRun => Environment.GetEnvironmentVariable("BLOCKSHOT_LONG_TESTS") == "1";

    /// <summary>Reads the whole node in pieces of at most 4 MiB.</summary>
    public static async Task<byte[]> ReadAllAsync(BlockNode node)
    {
        var all = new byte[node.Size];
        for (long pos = 0; pos < all.Length; pos += 4 << 20)
        {
            var n = (int)Math.Min(4 << 20, all.Length - pos);
            await node.ReadAsync(pos, all.AsMemory((int)pos, n));
        }
        return all;
    }

    /// <summary>Random qemu-io commands (write -P, write -z, discard) over an image of <paramref name="size"/> bytes.</summary>
    public static List<string> RandomIoScript(int seed, long size, int count, bool zeroes = true, bool discards = true)
    {
        var rng = new Random(seed);
        var commands = new List<string>();
        for (var i = 0; i < count; i++)
        {
            var length = rng.Next(6) switch
            {
                0 => rng.Next(1, 600),
                1 => 512 * rng.Next(1, 20),
                2 => 4096 * rng.Next(1, 40),
                3 => 65536 * rng.Next(1, 4),
                _ => rng.Next(1, 300_000),
            };
            length = (int)Math.Min(length, size);
            var offset = rng.Next(3) == 0 ? Align.Down(rng.NextInt64(0, size - length + 1), 512) : rng.NextInt64(0, size - length + 1);
            var op = rng.Next(10);
            if (op < 7 || (!zeroes && !discards))
            {
                commands.Add($"write -P {rng.Next(1, 255)} {offset} {length}");
            }
            else if (op < 9 && zeroes)
            {
                commands.Add($"write -z {offset} {length}");
            }
            else if (discards)
            {
                commands.Add($"discard {offset} {length}");
            }
            else
            {
                commands.Add($"write -z {offset} {length}");
            }
        }
        return commands;
    }

    /// <summary>Runs commands in batches (qemu-io accepts many -c options per run).</summary>
    public static void RunIo(string image, IEnumerable<string> commands)
    {
        foreach (var batch in commands.Chunk(40))
        {
            Qemu.Io(image, batch);
        }
    }

    /// <summary>Reads the node at random unaligned spots and compares with <paramref name="expected"/>.</summary>
    public static async Task CompareRandomReadsAsync(BlockNode node, byte[] expected, int seed, int count)
    {
        var rng = new Random(seed);
        var buffer = new byte[300_000];
        for (var i = 0; i < count; i++)
        {
            var length = rng.Next(1, Math.Min(buffer.Length, expected.Length));
            var offset = rng.NextInt64(0, expected.Length - length + 1);
            await node.ReadAsync(offset, buffer.AsMemory(0, length));
            var diff = Patterns.FirstDifference(expected.AsSpan((int)offset, length), buffer.AsSpan(0, length));
            Assert.True(diff < 0, $"read at {offset}+{length} differs at byte {offset + diff}");
        }
    }

    /// <summary>Checks that extents cover the node and zero extents read as zero.</summary>
    public static async Task CheckExtentsAsync(BlockNode node, byte[] content)
    {
        var list = new ExtentList();
        long pos = 0;
        while (pos < node.Size)
        {
            list.Reset(pos, node.Size - pos);
            await node.GetExtentsAsync(pos, node.Size - pos, list);
            Assert.True(list.Count > 0);
            foreach (var e in list.Items)
            {
                if ((e.Flags & AllocationFlags.Zero) != 0)
                {
                    Assert.True(content.AsSpan((int)e.Offset, (int)e.Length).IndexOfAnyExcept((byte)0) < 0,
                        $"extent {e} claims zeros but holds data");
                }
            }
            pos = list.End;
        }
    }
}
