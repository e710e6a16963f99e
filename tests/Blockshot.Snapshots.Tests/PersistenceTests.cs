using System.Diagnostics;
using Blockshot.Core;

namespace Blockshot.Snapshots.Tests;

public class PersistenceTests
{
    private const long Size = 16 << 20;

    private sealed record Files(string Origin, string Store, string Log);

    private static Files Prepare(TempDir dir, int seed = 0)
    {
        var files = new Files(dir.File("origin.raw"), dir.File("store.raw"), dir.File("snapshots.log"));
        var data = new byte[Size];
        Patterns.Fill(data, 0, seed);
        File.WriteAllBytes(files.Origin, data);
        File.WriteAllBytes(files.Store, []);
        return files;
    }

    private static Task<CbwFilter> OpenAsync(Files f) => CrashWriter.OpenAsync(f.Origin, f.Store, f.Log);

    private static async Task CloseAsync(CbwFilter filter, bool clean)
    {
        if (clean)
        {
            await filter.Next.FlushAsync();
            await filter.CloseAsync();
        }
        var store = filter.Store;
        var origin = filter.Next;
        await filter.DisposeAsync();
        await store.DisposeAsync();
        await origin.DisposeAsync();
    }

    [Fact]
    public async Task Snapshots_reopen_with_the_same_content_after_a_clean_close()
    {
        using var dir = new TempDir();
        var f = Prepare(dir);
        var filter = await OpenAsync(f);
        var a = await filter.AddSnapshotAsync("a");
        await filter.WriteAsync(0, Patterns.Make(300_000, 0, 1), IoFlags.None);
        var b = await filter.AddSnapshotAsync("b", new SnapshotOptions { Writable = true });
        await filter.WriteAsync(100_000, Patterns.Make(500_000, 100_000, 2), IoFlags.None);
        await b.Image.WriteAsync(5 << 20, Patterns.Make(70_000, 5 << 20, 3), IoFlags.None);
        await b.Image.TrimAsync(8 << 20, 1 << 20, IoFlags.None);
        var viewA = await Rig.ReadAllAsync(a.Image);
        var viewB = await Rig.ReadAllAsync(b.Image);
        await CloseAsync(filter, clean: true);

        filter = await OpenAsync(f);
        try
        {
            Assert.Equal(["a", "b"], filter.Snapshots.Select(s => s.Name));
            Assert.All(filter.Snapshots, s => Assert.Equal(SnapshotState.Active, s.State));
            Assert.Equal(-1, Patterns.FirstDifference(viewA, await Rig.ReadAllAsync(filter.Snapshots[0].Image)));
            Assert.Equal(-1, Patterns.FirstDifference(viewB, await Rig.ReadAllAsync(filter.Snapshots[1].Image)));
            Assert.True(filter.Snapshots[1].Options.Writable);

            // New copies after the reopen reuse free slots and keep both views right.
            await filter.WriteAsync(2 << 20, Patterns.Make(1 << 20, 2 << 20, 4), IoFlags.None);
            Assert.Equal(-1, Patterns.FirstDifference(viewA, await Rig.ReadAllAsync(filter.Snapshots[0].Image)));
            await filter.RemoveSnapshotAsync(filter.Snapshots[0]);
        }
        finally
        {
            await CloseAsync(filter, clean: true);
        }
        filter = await OpenAsync(f);
        Assert.Equal(["b"], filter.Snapshots.Select(s => s.Name));
        await CloseAsync(filter, clean: false);
    }

    [Fact]
    public async Task A_write_to_the_origin_while_closed_makes_the_snapshots_come_back_failed()
    {
        using var dir = new TempDir();
        var f = Prepare(dir);
        var filter = await OpenAsync(f);
        await filter.AddSnapshotAsync("a");
        await CloseAsync(filter, clean: true);
        await Task.Delay(20);
        await using (var w = File.OpenWrite(f.Origin))
        {
            w.Position = 4096;
            w.WriteByte(0xAB);
        }
        filter = await OpenAsync(f);
        try
        {
            var s = Assert.Single(filter.Snapshots);
            Assert.Equal(SnapshotState.Failed, s.State);
            Assert.Contains("written while", s.FailureReason);
            await Assert.ThrowsAsync<BlockException>(() => s.Image.ReadAsync(0, new byte[1]).AsTask());
        }
        finally
        {
            await CloseAsync(filter, clean: false);
        }
    }

    [Fact]
    public async Task A_write_after_an_idle_spell_renews_the_heartbeat_before_it_reaches_the_origin()
    {
        // The timer only beats while writes flow; a stop right after the first write that follows a
        // long idle spell must not make that (protected) write look like someone else's.
        using var dir = new TempDir();
        var f = Prepare(dir);
        var lease = TimeSpan.FromMilliseconds(600);
        var filter = await CrashWriter.OpenAsync(f.Origin, f.Store, f.Log, lease);
        var s = await filter.AddSnapshotAsync("a");
        var view = await Rig.ReadAllAsync(s.Image);
        await filter.WriteAsync(4 << 20, Patterns.Make(200_000, 4 << 20, 9), IoFlags.None);
        await Task.Delay(lease * 3);
        // The chunks are copied already: nothing but the renewal stands between this write and the origin.
        await filter.WriteAsync(4 << 20, Patterns.Make(200_000, 4 << 20, 10), IoFlags.None);
        await CloseAsync(filter, clean: false);

        filter = await CrashWriter.OpenAsync(f.Origin, f.Store, f.Log, lease);
        try
        {
            var again = Assert.Single(filter.Snapshots);
            Assert.True(again.State == SnapshotState.Active, again.FailureReason);
            Assert.Equal(-1, Patterns.FirstDifference(view, await Rig.ReadAllAsync(again.Image)));
        }
        finally
        {
            await CloseAsync(filter, clean: false);
        }
    }

    [Fact]
    public async Task An_origin_written_after_an_unclean_stop_and_the_lease_brings_the_snapshots_back_failed()
    {
        using var dir = new TempDir();
        var f = Prepare(dir);
        var lease = TimeSpan.FromMilliseconds(300);
        var filter = await CrashWriter.OpenAsync(f.Origin, f.Store, f.Log, lease);
        await filter.AddSnapshotAsync("a");
        await filter.WriteAsync(0, Patterns.Make(4096, 0, 3), IoFlags.None);
        await CloseAsync(filter, clean: false);
        await Task.Delay(lease * 3);
        await using (var w = File.OpenWrite(f.Origin))
        {
            w.Position = 8192;
            w.WriteByte(0xCD);
        }
        filter = await CrashWriter.OpenAsync(f.Origin, f.Store, f.Log, lease);
        try
        {
            var s = Assert.Single(filter.Snapshots);
            Assert.Equal(SnapshotState.Failed, s.State);
            Assert.Contains("modified afterwards", s.FailureReason);
        }
        finally
        {
            await CloseAsync(filter, clean: false);
        }
    }

    [Fact]
    public async Task A_killed_writer_never_leaves_the_snapshot_wrong()
    {
        using var dir = new TempDir();
        var f = Prepare(dir);
        var expected = new byte[Size];
        Patterns.Fill(expected, 0, 0);
        var rounds = Environment.GetEnvironmentVariable("BLOCKSHOT_LONG_TESTS") is null ? 20 : 60;
        var rng = new Random(5);
        for (var round = 0; round < rounds; round++)
        {
            await RunAndKillAsync(f, round, rng.Next(30, 400));
            var filter = await OpenAsync(f);
            try
            {
                var s = Assert.Single(filter.Snapshots);
                Assert.True(s.State == SnapshotState.Active, $"round {round}: {s.FailureReason}");
                var view = await Rig.ReadAllAsync(s.Image);
                var diff = Patterns.FirstDifference(expected, view);
                Assert.True(diff < 0, $"round {round}: the snapshot shows data written after the take at byte {diff}");
            }
            finally
            {
                await CloseAsync(filter, clean: false);
            }
        }
        var origin = await File.ReadAllBytesAsync(f.Origin);
        Assert.NotEqual(-1, Patterns.FirstDifference(expected, origin)); // the writers did change the origin
    }

    private static async Task RunAndKillAsync(Files f, int seed, int delayMs)
    {
        var dotnet = Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet";
        var psi = new ProcessStartInfo(dotnet) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "exec", typeof(CrashWriter).Assembly.Location, "snapshot-crash-writer", f.Origin, f.Store, f.Log, seed.ToString() })
        {
            psi.ArgumentList.Add(a);
        }
        using var child = Process.Start(psi)!;
        var line = await child.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
        if (line != "READY")
        {
            throw new Xunit.Sdk.XunitException($"writer did not start: {line} {await child.StandardError.ReadToEndAsync()}");
        }
        await Task.Delay(delayMs);
        if (child.HasExited)
        {
            throw new Xunit.Sdk.XunitException($"writer died by itself: {await child.StandardError.ReadToEndAsync()}");
        }
        child.Kill();
        await child.WaitForExitAsync();
    }
}
