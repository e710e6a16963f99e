using System.Diagnostics;

namespace Blockshot.Qcow2.Tests;

/// <summary>
/// A child process writes to an image and is killed with SIGKILL at a random moment. The peer's check
/// must never find corruption (leaks are allowed and repaired), and every write acknowledged by a
/// completed flush must read back.
/// </summary>
public class CrashTests
{
    private const long Size = 8 << 20;

    public static TheoryData<string, int, bool, bool> Configurations()
    {
        var rounds = TestImages.LongRun ? 13 : 5;
        return new TheoryData<string, int, bool, bool>
        {
            { "", rounds, true, true },
            { "cluster_size=4k,refcount_bits=8", rounds, false, false },
            { "extended_l2=on,cluster_size=32k", rounds, true, true },
            { "cluster_size=512,refcount_bits=4", rounds, false, true },
            { "lazy_refcounts=on,cluster_size=16k", TestImages.LongRun ? 10 : 3, false, true },
        };
    }

    [RequiresToolsTheory("qemu-img")]
    [MemberData(nameof(Configurations))]
    public async Task Killed_writer_never_corrupts_and_keeps_flushed_writes(string options, int rounds, bool snapshots, bool compressed)
    {
        using var dir = new TempDir("qcow2-crash");
        var path = dir.File("img.qcow2");
        var create = CreateTests.Parse(options);
        await Qcow2Image.CreateAsync(path, Size, create);
        var rng = new Random(options.Length * 7 + rounds);
        for (var round = 0; round < rounds; round++)
        {
            var baseline = Qemu.ToRaw(path, dir.Path);
            var seed = rng.Next();
            var (lastFlushed, lastStarted, output) = RunAndKill(path, seed, create.ClusterSize, snapshots, compressed, rng.Next(40, 700));

            if (create.LazyRefcounts)
            {
                // Lazy refcounts leave the image dirty by design; a read-write open repairs it.
                await using (var repair = await Qcow2Node.OpenAsync(path))
                {
                }
            }
            var (rc, _, text) = Qemu.Check(path);
            var lastOp = lastStarted < 0 ? default : CrashScript.Op(seed, lastStarted, Size, create.ClusterSize, snapshots, compressed);
            if (rc == 2 && lastOp.Kind is CrashOpKind.Snapshot or CrashOpKind.DeleteSnapshot)
            {
                // Refcounts and COPIED flags live in different clusters, so a crash inside a snapshot
                // operation can leave flags that disagree with refcounts (always in the harmless
                // direction: refcount one without COPIED). Nothing else may be wrong.
                var errors = text.Split('\n').Where(l => l.StartsWith("ERROR", StringComparison.Ordinal)).ToList();
                Assert.True(errors.All(e => e.StartsWith("ERROR OFLAG_COPIED", StringComparison.Ordinal) && e.EndsWith("refcount=1", StringComparison.Ordinal)),
                    $"round {round} ({options}): crash during {lastOp.Kind} left more than COPIED flags behind\n{text}");
                var fixedAll = Qemu.Check(path, "all");
                Assert.True(fixedAll.ExitCode == 0, $"round {round}: repair failed\n{fixedAll.Text}");
                rc = 0;
            }
            Assert.True(rc is 0 or 3, $"round {round} ({options}): check after kill exited {rc} (last op {lastOp})\n{text}\nchild:\n{output}");
            if (rc == 3)
            {
                var repaired = Qemu.Check(path, "leaks");
                Assert.True(repaired.ExitCode == 0, $"round {round}: leak repair failed\n{repaired.Text}");
            }

            // Rebuild what must be there: baseline plus every op up to the last completed flush; bytes
            // any later op (possibly half done) touched are not checked.
            var expected = (byte[])baseline.Clone();
            var maybe = new bool[Size];
            for (var i = 0; i <= lastStarted; i++)
            {
                var op = CrashScript.Op(seed, i, Size, create.ClusterSize, snapshots, compressed);
                if (i <= lastFlushed)
                {
                    Apply(expected, maybe, op);
                }
                else
                {
                    foreach (var (o, l) in Touched(op))
                    {
                        maybe.AsSpan((int)o, l).Fill(true);
                    }
                }
            }
            var actual = Qemu.ToRaw(path, dir.Path);
            for (var b = 0; b < Size; b++)
            {
                if (!maybe[b] && actual[b] != expected[b])
                {
                    var who = new List<string>();
                    for (var i = 0; i <= lastStarted + 40; i++)
                    {
                        var op = CrashScript.Op(seed, i, Size, create.ClusterSize, snapshots, compressed);
                        if (Touched(op).Any(t => b >= t.Offset && b < t.Offset + t.Length))
                        {
                            who.Add($"{op}");
                        }
                    }
                    Assert.Fail($"round {round} ({options}): byte {b} is 0x{actual[b]:x2}, expected 0x{expected[b]:x2} (last flush at op {lastFlushed}, last started {lastStarted}); ops touching it: {string.Join("; ", who)}\nchild tail: {output}");
                }
            }
        }
    }

    private static IEnumerable<(long Offset, int Length)> Touched(CrashOp op)
    {
        switch (op.Kind)
        {
            case CrashOpKind.Write:
            case CrashOpKind.Compressed:
            case CrashOpKind.ParallelWrites:
                foreach (var (o, l, _) in CrashScript.Writes(op, Size))
                {
                    yield return (o, l);
                }
                break;
            case CrashOpKind.Zero:
            case CrashOpKind.ZeroMayTrim:
            case CrashOpKind.Trim:
                yield return (op.Offset, op.Length);
                break;
        }
    }

    /// <summary>Applies a completed op to the expected bytes; trimmed bytes become unknown.</summary>
    private static void Apply(byte[] expected, bool[] unknown, CrashOp op)
    {
        switch (op.Kind)
        {
            case CrashOpKind.Write:
            case CrashOpKind.Compressed:
            case CrashOpKind.ParallelWrites:
                foreach (var (o, l, s) in CrashScript.Writes(op, Size))
                {
                    CrashScript.Data(o, l, s, op.Kind).CopyTo(expected.AsSpan((int)o));
                    unknown.AsSpan((int)o, l).Clear();
                }
                break;
            case CrashOpKind.Zero:
            case CrashOpKind.ZeroMayTrim:
                expected.AsSpan((int)op.Offset, op.Length).Clear();
                unknown.AsSpan((int)op.Offset, op.Length).Clear();
                break;
            case CrashOpKind.Trim:
                unknown.AsSpan((int)op.Offset, op.Length).Fill(true);
                break;
        }
    }

    private static (int LastFlushed, int LastStarted, string Output) RunAndKill(string image, int seed, int cluster, bool snapshots, bool compressed, int delayMs)
    {
        var host = typeof(CrashHost).Assembly.Location;
        var dotnet = Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet";
        var psi = new ProcessStartInfo(dotnet)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "exec", host, "crash-writer", image, seed.ToString(), Size.ToString(), cluster.ToString(), snapshots ? "1" : "0", compressed ? "1" : "0" })
        {
            psi.ArgumentList.Add(a);
        }
        using var child = Process.Start(psi)!;
        var lines = new List<string>();
        var ready = new ManualResetEventSlim();
        var done = new ManualResetEventSlim();
        var reader = new Thread(() =>
        {
            string? line;
            while ((line = child.StandardOutput.ReadLine()) is not null)
            {
                lock (lines)
                {
                    lines.Add(line);
                }
                if (line == "READY")
                {
                    ready.Set();
                }
            }
            done.Set();
        });
        reader.Start();
        var stderr = child.StandardError.ReadToEndAsync();
        if (!ready.Wait(TimeSpan.FromSeconds(60)))
        {
            child.Kill();
            throw new Xunit.Sdk.XunitException("crash writer did not start: " + stderr.Result);
        }
        Thread.Sleep(delayMs);
        try
        {
            child.Kill(); // SIGKILL: no cleanup, no flush.
        }
        catch (InvalidOperationException)
        {
            // Already exited.
        }
        child.WaitForExit();
        done.Wait(TimeSpan.FromSeconds(30));
        int lastFlushed = -1, lastStarted = -1;
        lock (lines)
        {
            foreach (var line in lines)
            {
                if (line.StartsWith("START ", StringComparison.Ordinal))
                {
                    lastStarted = int.Parse(line.AsSpan(6));
                }
                else if (line.StartsWith("FLUSHED ", StringComparison.Ordinal))
                {
                    lastFlushed = int.Parse(line.AsSpan(8));
                }
            }
            var tail = string.Join('\n', lines.TakeLast(5)) + "\n" + stderr.Result;
            return (lastFlushed, lastStarted, tail);
        }
    }
}
