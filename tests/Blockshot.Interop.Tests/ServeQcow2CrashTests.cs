using System.Net.Sockets;
using Blockshot.Core;
using Blockshot.Nbd.Client;
using Xunit.Abstractions;

namespace Blockshot.Interop.Tests;

/// <summary>
/// <c>blockshot serve</c> of a qcow2 image is killed with SIGKILL at a random moment while a client
/// writes, zeroes, trims and flushes through the export. qemu-img check must never find corruption
/// (leaks are allowed, and <c>check -r leaks</c> must repair them), and every write whose flush was
/// acknowledged must read back. The default run kills a few times per image; BLOCKSHOT_LONG_TESTS=1
/// kills 26 times per image (52 in all).
/// </summary>
public class ServeQcow2CrashTests(ITestOutputHelper output)
{
    private const int Size = 16 << 20;

    public static TheoryData<string, string> Images() => new()
    {
        { "ours", "cluster_size=16k" },
        { "qemu", "extended_l2=on,cluster_size=64k" },
    };

    [RequiresToolsTheory("qemu-img")]
    [MemberData(nameof(Images))]
    public async Task Killed_server_never_corrupts_the_image_and_keeps_flushed_writes(string maker, string options)
    {
        var rounds = ImageTool.Long ? 26 : 3;
        using var dir = new TempDir();
        var image = dir.File("img.qcow2");
        string[] create = ["create", "-q", "-f", "qcow2", "-o", options, image, Size.ToString()];
        if (maker == "ours")
        {
            await ImageTool.OursOkAsync(create);
        }
        else
        {
            await ImageTool.QemuOkAsync(create);
        }
        var rng = new Random(maker.Length * 1000 + options.Length);
        int totalOps = 0, totalDurable = 0, leakRepairs = 0;
        for (var round = 0; round < rounds; round++)
        {
            var raw = dir.File("now.raw");
            await ImageTool.QemuOkAsync("convert", "-f", "qcow2", "-O", "raw", image, raw);
            var model = new DurableModel(File.ReadAllBytes(raw));
            var served = await ServedImage.BlockshotAsync(dir.File($"s{round}.sock"), image, "--name", "disk");
            await using (served)
            {
                var (ops, durable) = await WriteUntilKilledAsync(served, model, rng.Next(), rng.Next(30, 900));
                totalOps += ops;
                totalDurable += durable;
            }

            var check = await ImageTool.QemuAsync("check", image);
            Assert.True(check.ExitCode is 0 or 3,
                $"round {round}: qemu-img check exited {check.ExitCode} after the kill (2 is corruption):\n{check.Stdout}{check.Stderr}");
            if (check.ExitCode == 3)
            {
                leakRepairs++;
                var repair = await ImageTool.QemuAsync("check", "-r", "leaks", image);
                Assert.True(repair.ExitCode == 0, $"round {round}: check -r leaks exited {repair.ExitCode}:\n{repair.Stdout}{repair.Stderr}");
                await ImageTool.AssertCleanAsync(image);
            }
            await ImageTool.QemuOkAsync("convert", "-f", "qcow2", "-O", "raw", image, raw);
            model.Verify(File.ReadAllBytes(raw), $"round {round} ({maker}, {options})");
        }
        output.WriteLine($"{rounds} kills, {totalOps} requests, {totalDurable} made durable by a flush, {leakRepairs} leak repairs");
        Assert.True(totalDurable > 0, $"no flush completed before any kill in {rounds} rounds; the test proved nothing");
    }

    /// <summary>
    /// Sends batches of non-overlapping requests (so their order is known), flushing after some batches,
    /// until the server dies; the server is killed <paramref name="killAfterMs"/> after the first acknowledged flush.
    /// Returns the requests sent and how many a completed flush made durable.
    /// </summary>
    private static async Task<(int Ops, int Durable)> WriteUntilKilledAsync(ServedImage served, DurableModel model, int seed, int killAfterMs)
    {
        Assert.True(NbdUri.TryParse(served.Uri("disk"), out var uri, out var error), error);
        var node = await NbdClientNode.ConnectAsync(uri!);
        var rng = new Random(seed);
        // The clock starts at the first acknowledged flush, so every round proves something even when a
        // loaded machine makes the client slow; the kill still lands at a random point after it.
        var firstFlush = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var killer = Task.Run(async () =>
        {
            await Task.WhenAny(firstFlush.Task, Task.Delay(TimeSpan.FromSeconds(60)));
            await Task.Delay(killAfterMs);
            Assert.Equal(0, kill(served.Pid, 9));
        });
        int ops = 0, durable = 0;
        try
        {
            for (var batch = 0; ; batch++)
            {
                var requests = new List<(CrashOp Op, Task Task)>();
                for (var i = rng.Next(1, 9); i > 0; i--)
                {
                    var op = CrashOp.Random(rng, Size, seed + batch * 16 + i);
                    if (requests.Any(r => r.Op.Overlaps(op)))
                    {
                        continue;
                    }
                    model.Pending(op);
                    requests.Add((op, op.SendAsync(node)));
                    ops++;
                }
                await Task.WhenAll(requests.Select(r => r.Task));
                if (rng.Next(3) == 0)
                {
                    await node.FlushAsync();
                    durable += model.Flushed();
                    firstFlush.TrySetResult();
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or BlockException or NbdClientException or ObjectDisposedException)
        {
            // The server died under the client: the expected end of every round.
        }
        await killer;
        await DisposeBrokenAsync(node);
        return (ops, durable);
    }

    private static async Task DisposeBrokenAsync(NbdClientNode node)
    {
        try
        {
            await node.DisposeAsync();
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            // Saying goodbye to a dead server fails; nothing is left to release.
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    private enum CrashOpKind
    {
        Write,
        Zero,
        ZeroMayTrim,
        Trim,
    }

    private sealed record CrashOp(CrashOpKind Kind, long Offset, int Length, int Seed)
    {
        public static CrashOp Random(Random rng, int size, int seed)
        {
            var length = rng.Next(3) switch { 0 => rng.Next(1, 5000), 1 => 4096 * rng.Next(1, 32), _ => rng.Next(1, 300_000) };
            var offset = rng.Next(2) == 0 ? rng.NextInt64(0, size - length) & ~4095L : rng.NextInt64(0, size - length);
            var kind = rng.Next(10) switch { < 7 => CrashOpKind.Write, 7 => CrashOpKind.Zero, 8 => CrashOpKind.ZeroMayTrim, _ => CrashOpKind.Trim };
            return new CrashOp(kind, offset, length, seed);
        }

        public bool Overlaps(CrashOp other) => Offset < other.Offset + other.Length && other.Offset < Offset + Length;

        public byte[] Data() => Patterns.Make(Length, Offset, Seed);

        public Task SendAsync(NbdClientNode node) => Kind switch
        {
            CrashOpKind.Write => node.WriteAsync(Offset, Data(), IoFlags.None).AsTask(),
            CrashOpKind.Zero => node.WriteZeroesAsync(Offset, Length, IoFlags.None).AsTask(),
            CrashOpKind.ZeroMayTrim => node.WriteZeroesAsync(Offset, Length, IoFlags.MayTrim).AsTask(),
            _ => node.TrimAsync(Offset, Length, IoFlags.None).AsTask(),
        };
    }

    /// <summary>
    /// What must be on disk: the image before the round plus every request a completed flush covered.
    /// Bytes touched by requests no completed flush covered, and trimmed bytes, are not checked.
    /// </summary>
    private sealed class DurableModel(byte[] before)
    {
        private readonly byte[] _bytes = before;
        private readonly bool[] _unknown = new bool[before.Length];
        private readonly List<CrashOp> _pending = [];

        public void Pending(CrashOp op) => _pending.Add(op);

        /// <summary>A flush completed: everything sent before it is durable. Returns how many requests that was.</summary>
        public int Flushed()
        {
            foreach (var op in _pending)
            {
                switch (op.Kind)
                {
                    case CrashOpKind.Write:
                        op.Data().CopyTo(_bytes.AsSpan((int)op.Offset));
                        _unknown.AsSpan((int)op.Offset, op.Length).Clear();
                        break;
                    case CrashOpKind.Trim:
                        _unknown.AsSpan((int)op.Offset, op.Length).Fill(true);
                        break;
                    default:
                        _bytes.AsSpan((int)op.Offset, op.Length).Clear();
                        _unknown.AsSpan((int)op.Offset, op.Length).Clear();
                        break;
                }
            }
            var n = _pending.Count;
            _pending.Clear();
            return n;
        }

        public void Verify(byte[] actual, string context)
        {
            Assert.Equal(_bytes.Length, actual.Length);
            var unknown = (bool[])_unknown.Clone();
            foreach (var op in _pending)
            {
                unknown.AsSpan((int)op.Offset, op.Length).Fill(true);
            }
            for (var i = 0; i < actual.Length; i++)
            {
                if (!unknown[i] && actual[i] != _bytes[i])
                {
                    Assert.Fail($"{context}: byte {i} is 0x{actual[i]:x2}, a flushed write left 0x{_bytes[i]:x2} there");
                }
            }
        }
    }
}
