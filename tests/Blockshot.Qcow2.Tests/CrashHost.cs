using Blockshot.Core;

namespace Blockshot.Qcow2.Tests;

/// <summary>One step of a crash-test script, derived from (seed, index) so parent and child agree.</summary>
internal readonly record struct CrashOp(int Index, CrashOpKind Kind, long Offset, int Length);

internal enum CrashOpKind
{
    Write,
    Zero,
    ZeroMayTrim,
    Trim,
    Flush,
    Compressed,
    ParallelWrites,
    Snapshot,
    DeleteSnapshot,
}

internal static class CrashScript
{
    public static CrashOp Op(int seed, int index, long size, int clusterSize, bool snapshots, bool compressed)
    {
        var rng = new Random(unchecked((seed * 1_000_003) ^ (index * 7919)));
        var roll = rng.Next(100);
        var kind = roll switch
        {
            < 45 => CrashOpKind.Write,
            < 52 => CrashOpKind.Zero,
            < 57 => CrashOpKind.ZeroMayTrim,
            < 62 => CrashOpKind.Trim,
            < 78 => CrashOpKind.Flush,
            < 84 => compressed ? CrashOpKind.Compressed : CrashOpKind.Write,
            < 94 => CrashOpKind.ParallelWrites,
            < 97 => snapshots ? CrashOpKind.Snapshot : CrashOpKind.Flush,
            _ => snapshots ? CrashOpKind.DeleteSnapshot : CrashOpKind.Write,
        };
        var length = rng.Next(4) switch
        {
            0 => rng.Next(1, 3000),
            1 => 4096 * rng.Next(1, 8),
            2 => clusterSize * rng.Next(1, 3),
            _ => rng.Next(1, 200_000),
        };
        length = (int)Math.Min(length, size / 8);
        var offset = rng.NextInt64(0, size - length);
        if (kind == CrashOpKind.Compressed)
        {
            offset = Align.Down(offset, clusterSize);
            length = (int)Math.Min(clusterSize, size - offset);
        }
        if (kind == CrashOpKind.ParallelWrites)
        {
            // Four writes of one cluster each, in four quarters of the disk: disjoint, concurrent.
            length = Math.Min(clusterSize, (int)(size / 16));
            offset = Align.Down(rng.NextInt64(0, size / 4 - length), 512);
        }
        return new CrashOp(index, kind, offset, length);
    }

    /// <summary>The ranges an op writes (for the model and for the "maybe written" set).</summary>
    public static IEnumerable<(long Offset, int Length, int Seed)> Writes(CrashOp op, long size)
    {
        if (op.Kind == CrashOpKind.ParallelWrites)
        {
            for (var q = 0; q < 4; q++)
            {
                yield return (op.Offset + q * (size / 4), op.Length, op.Index * 4 + q);
            }
        }
        else if (op.Kind is CrashOpKind.Write or CrashOpKind.Compressed)
        {
            yield return (op.Offset, op.Length, op.Index * 4);
        }
    }

    public static byte[] Data(long offset, int length, int seed, CrashOpKind kind)
    {
        var data = Patterns.Make(length, offset, seed);
        if (kind == CrashOpKind.Compressed)
        {
            // Compressible: runs of repeated bytes.
            for (var i = 0; i < data.Length; i++)
            {
                data[i] = (byte)((offset + i) / 97 + seed);
            }
        }
        return data;
    }
}

/// <summary>
/// Entry point when the test assembly runs as a process: <c>crash-writer image seed size cluster
/// snapshots compressed</c> opens the image and runs the crash script until killed, printing
/// "START i" before each op and "FLUSHED i" after each completed flush.
/// </summary>
public static class CrashHost
{
    public static async Task<int> Main(string[] args)
    {
        if (args.Length < 6 || args[0] != "crash-writer")
        {
            Console.Error.WriteLine("usage: crash-writer image seed size cluster snapshots compressed");
            return 2;
        }
        var image = args[1];
        var seed = int.Parse(args[2]);
        var size = long.Parse(args[3]);
        var cluster = int.Parse(args[4]);
        var snapshots = args[5] == "1";
        var compressed = args.Length > 6 && args[6] == "1";
        var node = await Qcow2Node.OpenAsync(image);
        Console.WriteLine("READY");
        var snapshotCount = 0;
        for (var i = 0; i < 100_000; i++)
        {
            var op = CrashScript.Op(seed, i, size, cluster, snapshots, compressed);
            Console.WriteLine($"START {i}");
            switch (op.Kind)
            {
                case CrashOpKind.Write:
                    await node.WriteAsync(op.Offset, CrashScript.Data(op.Offset, op.Length, i * 4, op.Kind), IoFlags.None);
                    break;
                case CrashOpKind.Compressed:
                    await node.WriteCompressedAsync(op.Offset, CrashScript.Data(op.Offset, op.Length, i * 4, op.Kind));
                    break;
                case CrashOpKind.ParallelWrites:
                    await Task.WhenAll(CrashScript.Writes(op, size).Select(w =>
                        node.WriteAsync(w.Offset, CrashScript.Data(w.Offset, w.Length, w.Seed, op.Kind), IoFlags.None).AsTask()));
                    break;
                case CrashOpKind.Zero:
                    await node.WriteZeroesAsync(op.Offset, op.Length, IoFlags.None);
                    break;
                case CrashOpKind.ZeroMayTrim:
                    await node.WriteZeroesAsync(op.Offset, op.Length, IoFlags.MayTrim);
                    break;
                case CrashOpKind.Trim:
                    await node.TrimAsync(op.Offset, op.Length, IoFlags.None);
                    break;
                case CrashOpKind.Flush:
                    await node.FlushAsync();
                    Console.WriteLine($"FLUSHED {i}");
                    break;
                case CrashOpKind.Snapshot:
                    await node.CreateSnapshotAsync($"crash-{seed}-{i}");
                    snapshotCount++;
                    break;
                case CrashOpKind.DeleteSnapshot:
                    if (node.Snapshots.Count > 0)
                    {
                        await node.DeleteSnapshotAsync(node.Snapshots[0].Id);
                    }
                    break;
            }
        }
        await node.DisposeAsync();
        Console.WriteLine("END");
        return 0;
    }
}
