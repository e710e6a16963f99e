using System.Buffers.Binary;
using System.Security.Cryptography;
using Blockshot.Core;
using Blockshot.Core.Extents;
using Blockshot.Qcow2.Format;
using Xunit.Abstractions;

namespace Blockshot.Qcow2.Tests;

/// <summary>
/// Mutates valid images (header fields, extensions, L1/L2 entries, refcounts, snapshot and bitmap
/// structures, truncation) and opens each result. Every open must work or fail with a
/// <see cref="BlockException"/>; no other exception, no hang, no case allocating more than a fixed
/// bound, nothing written through a read-only open. 300 cases by default; BLOCKSHOT_LONG_TESTS=1 runs
/// 10,000.
/// </summary>
[Collection(nameof(HostileImageMeasurement))]
public class HostileImageTests(ITestOutputHelper output)
{
    private static readonly (int Offset, int Size, string Name)[] HeaderFields =
    [
        (4, 4, "version"), (8, 8, "backing_file_offset"), (16, 4, "backing_file_size"), (20, 4, "cluster_bits"),
        (24, 8, "size"), (32, 4, "crypt_method"), (36, 4, "l1_size"), (40, 8, "l1_table_offset"),
        (48, 8, "refcount_table_offset"), (56, 4, "refcount_table_clusters"), (60, 4, "nb_snapshots"),
        (64, 8, "snapshots_offset"), (72, 8, "incompatible_features"), (80, 8, "compatible_features"),
        (88, 8, "autoclear_features"), (96, 4, "refcount_order"), (100, 4, "header_length"), (104, 1, "compression_type"),
    ];

    /// <summary>Longest a case (open, reads, extents, map, check, close) may take.</summary>
    private static readonly TimeSpan CaseTimeLimit = TimeSpan.FromSeconds(20);

    /// <summary>
    /// Most a read-only case may allocate, in all: the images are at most 2 MiB, so anything near this
    /// means a size field was trusted (the format's own caps, such as a 32 MiB L1 table, fit under it).
    /// </summary>
    private const long CaseMemoryLimit = 256L << 20;

    private static List<string> BuildBases(TempDir dir)
    {
        var bases = new List<string>();
        string Make(string name, string options, string size, params string[] io)
        {
            var path = dir.File(name);
            Qemu.Img("create", "-f", "qcow2", "-o", options, path, size);
            if (io.Length > 0)
            {
                Qemu.Io(path, io);
            }
            bases.Add(path);
            return path;
        }
        Make("plain.qcow2", "compat=1.1", "2M", "write -P 1 0 300k", "write -z 1M 64k", "write -P 2 1500k 4k");
        Make("v2.qcow2", "compat=0.10,cluster_size=4k", "1M", "write -P 3 0 100k", "write -P 4 600k 10k");
        var snap = Make("snap.qcow2", "compat=1.1,cluster_size=4k,refcount_bits=8", "1M", "write -P 5 0 64k");
        Qemu.Img("snapshot", "-c", "s1", snap);
        Qemu.Io(snap, "write -P 6 0 8k");
        Qemu.Img("bitmap", "--add", snap, "b1");
        Make("ext.qcow2", "compat=1.1,extended_l2=on,cluster_size=16k", "1M", "write -P 7 1000 5000", "write -z 200k 32k");
        var src = Make("src.qcow2", "compat=1.1", "1M", "write -P 8 0 1M");
        var compressed = dir.File("comp.qcow2");
        Qemu.Img("convert", "-c", "-O", "qcow2", "-o", "cluster_size=4k,compression_type=zstd", src, compressed);
        bases.Remove(src);
        bases.Add(compressed);
        Make("small.qcow2", "compat=1.1,cluster_size=512,refcount_bits=1", "256k", "write -P 9 0 20k");
        var backing = dir.File("base.raw");
        File.WriteAllBytes(backing, new byte[256 << 10]);
        var top = dir.File("top.qcow2");
        Qemu.Img("create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", top, "512k");
        Qemu.Io(top, "write -P 10 4k 4k");
        bases.Add(top);
        return bases;
    }

    private static ulong Interesting(Random rng, ulong original, int clusterSize, long fileLength)
    {
        return rng.Next(14) switch
        {
            0 => 0,
            1 => 1,
            2 => ulong.MaxValue,
            3 => 0x7fffffff,
            4 => 0x80000000,
            5 => original + 1,
            6 => original - 1,
            7 => original << 1,
            8 => original ^ (1UL << rng.Next(64)),
            9 => (ulong)rng.Next(0, 64),
            10 => (ulong)(rng.NextInt64(0, fileLength + clusterSize * 4) & ~(clusterSize - 1L)),
            11 => (ulong)rng.NextInt64(),
            12 => original + (ulong)clusterSize,
            _ => (ulong)clusterSize,
        };
    }

    private static void Put(byte[] bytes, long at, int size, ulong value)
    {
        if (at < 0 || at + size > bytes.Length)
        {
            return;
        }
        switch (size)
        {
            case 1:
                bytes[at] = (byte)value;
                break;
            case 2:
                BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan((int)at), (ushort)value);
                break;
            case 4:
                BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan((int)at), (uint)value);
                break;
            default:
                BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan((int)at), value);
                break;
        }
    }

    private static ulong Get(byte[] bytes, long at, int size) => at < 0 || at + size > bytes.Length ? 0 : size switch
    {
        1 => bytes[at],
        2 => BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan((int)at)),
        4 => BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan((int)at)),
        _ => BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan((int)at)),
    };

    /// <summary>Applies one random mutation; returns its description.</summary>
    internal static string Mutate(ref byte[] bytes, Random rng)
    {
        if (bytes.Length < 8)
        {
            return "already tiny";
        }
        Qcow2Header h;
        try
        {
            h = Qcow2Header.Parse(bytes);
        }
        catch (BlockException)
        {
            var at = rng.Next(Math.Min(bytes.Length, 4096));
            bytes[at] = (byte)rng.Next(256);
            return $"byte {at}";
        }
        var cs = h.ClusterBits is >= 9 and <= 21 ? 1 << (int)h.ClusterBits : 65536;
        var kind = rng.Next(11);
        switch (kind)
        {
            case 0:
            case 1:
                {
                    var f = HeaderFields[rng.Next(HeaderFields.Length)];
                    var v = Interesting(rng, Get(bytes, f.Offset, f.Size), cs, bytes.Length);
                    Put(bytes, f.Offset, f.Size, v);
                    return $"header {f.Name}=0x{v:x}";
                }
            case 2:
                {
                    var start = h.Version == 2 ? 72 : (int)Math.Min(h.HeaderLength, 4096u);
                    if (start >= Math.Min(cs, bytes.Length))
                    {
                        goto default;
                    }
                    var at = rng.Next(start, Math.Min(cs, bytes.Length));
                    var n = rng.Next(1, 5);
                    for (var i = 0; i < n && at + i < bytes.Length; i++)
                    {
                        bytes[at + i] = (byte)rng.Next(256);
                    }
                    return $"extension bytes at {at}";
                }
            case 3:
                {
                    if (h.L1Size == 0)
                    {
                        goto default;
                    }
                    if (h.L1TableOffset > (ulong)bytes.Length)
                    {
                        goto default;
                    }
                    var at = (long)h.L1TableOffset + rng.Next((int)Math.Min(h.L1Size, 1024)) * 8L;
                    var v = Interesting(rng, Get(bytes, at, 8), cs, bytes.Length) | (rng.Next(2) == 0 ? L1Entry.Copied : 0);
                    Put(bytes, at, 8, v);
                    return $"L1 entry at {at}=0x{v:x}";
                }
            case 4:
            case 5:
                {
                    var l2s = new List<long>();
                    for (var i = 0; i < Math.Min(h.L1Size, 1024u); i++)
                    {
                        var e = h.L1TableOffset > (ulong)bytes.Length ? 0 : Get(bytes, (long)h.L1TableOffset + i * 8L, 8) & L1Entry.OffsetMask;
                        if (e != 0 && e <= (ulong)Math.Max(0, bytes.Length - cs))
                        {
                            l2s.Add((long)e);
                        }
                    }
                    if (l2s.Count == 0)
                    {
                        goto default;
                    }
                    var l2 = l2s[rng.Next(l2s.Count)];
                    var at = l2 + rng.Next(cs / 8) * 8L;
                    var original = Get(bytes, at, 8);
                    var v = rng.Next(4) switch
                    {
                        0 => original | L2Entry.CompressedFlag,
                        1 => original ^ 1,
                        2 => (original & ~L2Entry.OffsetMask) | (ulong)(rng.NextInt64(0, bytes.Length) & ~(cs - 1L)),
                        _ => Interesting(rng, original, cs, bytes.Length),
                    };
                    Put(bytes, at, 8, v);
                    return $"L2 word at {at}=0x{v:x}";
                }
            case 6:
                {
                    if (h.RefcountTableOffset > (ulong)bytes.Length)
                    {
                        goto default;
                    }
                    var at = (long)h.RefcountTableOffset + rng.Next(8) * 8L;
                    var v = Interesting(rng, Get(bytes, at, 8), cs, bytes.Length);
                    Put(bytes, at, 8, v);
                    return $"refcount table entry at {at}=0x{v:x}";
                }
            case 7:
                {
                    if (h.RefcountTableOffset > (ulong)bytes.Length)
                    {
                        goto default;
                    }
                    var block = (long)(Get(bytes, (long)h.RefcountTableOffset, 8) & RefcountTableEntry.OffsetMask);
                    if (block <= 0 || block > bytes.Length - cs)
                    {
                        goto default;
                    }
                    var at = block + rng.Next(Math.Min(cs, 256));
                    bytes[at] = (byte)rng.Next(256);
                    return $"refcount block byte at {at}";
                }
            case 8:
                {
                    if (h.SnapshotCount == 0 || h.SnapshotsOffset > (ulong)Math.Max(0, bytes.Length - 64))
                    {
                        goto default;
                    }
                    var at = (long)h.SnapshotsOffset + rng.Next(64);
                    bytes[at] = (byte)rng.Next(256);
                    return $"snapshot table byte at {at}";
                }
            case 9:
                {
                    var length = rng.Next(0, bytes.Length);
                    Array.Resize(ref bytes, length);
                    return $"truncated to {length}";
                }
            default:
                {
                    var at = rng.Next(Math.Min(bytes.Length, cs * 8));
                    bytes[at] = (byte)rng.Next(256);
                    return $"metadata byte at {at}";
                }
        }
    }

    [RequiresToolsFact("qemu-img", "qemu-io")]
    public async Task Mutated_images_open_cleanly_or_fail_with_a_block_exception()
    {
        var cases = TestImages.LongRun ? 10_000 : 300;
        using var dir = new TempDir("qcow2-hostile");
        var bases = BuildBases(dir).Select(p => (Path: p, Bytes: File.ReadAllBytes(p))).ToList();
        var failures = new List<string>();
        int opened = 0, refused = 0;
        long mostAllocated = 0;
        var rng = new Random(20240611);
        for (var n = 0; n < cases && failures.Count < 10; n++)
        {
            var (basePath, baseBytes) = bases[n % bases.Count];
            var bytes = (byte[])baseBytes.Clone();
            var mutations = new List<string>();
            for (var m = rng.Next(1, 4); m > 0; m--)
            {
                mutations.Add(Mutate(ref bytes, rng));
            }
            var path = Path.Combine(Path.GetDirectoryName(basePath)!, "case.qcow2");
            File.WriteAllBytes(path, bytes);
            var what = $"case {n} ({Path.GetFileName(basePath)}: {string.Join(", ", mutations)})";
            var hash = Convert.ToHexString(SHA256.HashData(bytes));
            var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
            try
            {
                var ok = await RunCaseAsync(path, rng.Next()).WaitAsync(CaseTimeLimit);
                if (ok)
                {
                    opened++;
                }
                else
                {
                    refused++;
                }
            }
            catch (TimeoutException)
            {
                failures.Add($"{what}: did not finish in {CaseTimeLimit.TotalSeconds} s");
                continue;
            }
            catch (Exception e)
            {
                failures.Add($"{what}: {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
                continue;
            }
            var allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;
            mostAllocated = Math.Max(mostAllocated, allocated);
            if (allocated > CaseMemoryLimit)
            {
                failures.Add($"{what}: allocated {allocated >> 20} MiB (limit {CaseMemoryLimit >> 20} MiB)");
            }
            if (Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path))) != hash)
            {
                failures.Add($"{what}: the file changed through a read-only open");
            }
            if (n % 5 == 0)
            {
                // Read-write use of a copy: writes either work or fail with a block exception.
                try
                {
                    await RunReadWriteAsync(path, rng.Next()).WaitAsync(CaseTimeLimit);
                }
                catch (TimeoutException)
                {
                    failures.Add($"{what}: read-write use did not finish in {CaseTimeLimit.TotalSeconds} s");
                }
                catch (Exception e)
                {
                    failures.Add($"{what} read-write: {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
                }
            }
        }
        output.WriteLine($"{opened} opened, {refused} refused, {failures.Count} failures; at most {mostAllocated >> 20} MiB allocated by one case");
        Assert.True(failures.Count == 0, string.Join("\n\n", failures));
    }

    /// <summary>Opens read-only and exercises reads, extents, map and check; true when it opened.</summary>
    private static async Task<bool> RunCaseAsync(string path, int seed)
    {
        Qcow2Node node;
        try
        {
            node = await Qcow2Node.OpenAsync(path, new Qcow2OpenOptions { ReadOnly = true });
        }
        catch (BlockException e)
        {
            Assert.False(string.IsNullOrWhiteSpace(e.Message));
            return false;
        }
        catch (Blockshot.Drivers.ImageOpenException e)
        {
            // A mutated backing file name that names no file.
            Assert.Equal(Blockshot.Drivers.ImageOpenError.NotFound, e.Reason);
            return false;
        }
        await using (node)
        {
            var rng = new Random(seed);
            var buffer = new byte[256 << 10];
            var size = node.Size;
            for (var i = 0; i < 12 && size > 0; i++)
            {
                var length = (int)Math.Min(rng.Next(1, buffer.Length), size);
                var offset = i switch
                {
                    0 => 0,
                    1 => size - length,
                    _ => rng.NextInt64(0, size - length + 1),
                };
                await Swallow(() => node.ReadAsync(offset, buffer.AsMemory(0, length)));
            }
            var extents = new ExtentList();
            var span = Math.Min(size, 64L << 20);
            extents.Reset(0, span, 4096);
            await Swallow(() => node.GetExtentsAsync(0, span, extents));
            foreach (var context in node.StatusContexts)
            {
                extents.Reset(0, span, 4096);
                await Swallow(() => context.QueryAsync(0, span, extents));
            }
            await SwallowTask(async () => await node.MapAsync(0, span));
            await SwallowTask(async () => await node.CheckAsync(Qcow2RepairMode.None));
            _ = node.GetInfo().ToJson();
        }
        return true;
    }

    private static async Task RunReadWriteAsync(string path, int seed)
    {
        var copy = path + ".rw";
        File.Copy(path, copy, overwrite: true);
        try
        {
            Qcow2Node node;
            try
            {
                node = await Qcow2Node.OpenAsync(copy, new Qcow2OpenOptions { OpenBacking = false });
            }
            catch (BlockException)
            {
                return;
            }
            await using (node)
            {
                var rng = new Random(seed);
                var size = node.Size;
                for (var i = 0; i < 8 && size > 0; i++)
                {
                    var length = (int)Math.Min(rng.Next(1, 100_000), size);
                    var offset = rng.NextInt64(0, size - length + 1);
                    var data = Patterns.Make(length, offset, i);
                    await Swallow(() => rng.Next(4) switch
                    {
                        0 => node.WriteZeroesAsync(offset, length, IoFlags.MayTrim),
                        1 => node.TrimAsync(offset, length, IoFlags.None),
                        _ => node.WriteAsync(offset, data, IoFlags.None),
                    });
                }
                await Swallow(() => node.FlushAsync());
            }
        }
        catch (BlockException)
        {
            // Closing a corrupt image may fail; that is a clean failure.
        }
        finally
        {
            File.Delete(copy);
        }
    }

    private static async Task Swallow(Func<ValueTask> action)
    {
        try
        {
            await action();
        }
        catch (BlockException)
        {
            // A clean refusal.
        }
    }

    private static Task SwallowTask(Func<Task> action) => Swallow(() => new ValueTask(action()));
}

/// <summary>The hostile-image cases count the process's allocations, so nothing else runs beside them.</summary>
[CollectionDefinition(nameof(HostileImageMeasurement), DisableParallelization = true)]
public sealed class HostileImageMeasurement;
