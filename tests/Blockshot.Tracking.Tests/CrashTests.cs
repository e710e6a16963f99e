using System.Diagnostics;

namespace Blockshot.Tracking.Tests;

/// <summary>
/// kill -9 of a process writing through the tracker, again and again. After each restart the map must
/// cover every write that reached the device: every block whose content differs from the copy taken at
/// the last period boundary is marked in that period or later, and the generation goes on (an unclean
/// stop of a file with no later foreign write is provably complete).
/// </summary>
public class CrashTests
{
    private const long Size = 16 << 20;
    private const int Block = TrackerCrashWriter.BlockSize;

    /// <summary>Rounds in the default run; BLOCKSHOT_LONG_TESTS=1 runs the long variant.</summary>
    public static int Rounds => Environment.GetEnvironmentVariable("BLOCKSHOT_LONG_TESTS") is null ? 50 : 150;

    [Fact]
    public async Task After_each_kill_the_map_covers_every_block_that_changed_since_the_last_period()
    {
        using var dir = new TempDir();
        var image = dir.File("disk.raw");
        var sidecar = dir.File("disk.cbt");
        var content = new byte[Size];
        Patterns.Fill(content, 0, 1);
        await File.WriteAllBytesAsync(image, content);

        var (device, tracker) = await TrackerCrashWriter.OpenAsync(image, sidecar);
        var generation = tracker.Generation;
        var rng = new Random(17);
        long changedBlocks = 0;
        for (var round = 0; round < Rounds; round++)
        {
            // A period boundary: what the device holds now is the last snapshot's copy.
            tracker.AdvancePeriod();
            var since = tracker.Period;
            var baseline = await File.ReadAllBytesAsync(image);
            await device.FlushAsync();
            await tracker.CloseAsync();
            await tracker.DisposeAsync();
            await device.DisposeAsync();

            await RunAndKillAsync(image, sidecar, round, rng.Next(20, 250));

            (device, tracker) = await TrackerCrashWriter.OpenAsync(image, sidecar);
            var reason = tracker.Info().GenerationReason;
            Assert.True(generation == tracker.Generation, $"round {round}: a new generation began: {reason}");
            Assert.True(tracker.Period >= since, $"round {round}: period went back from {since} to {tracker.Period}");
            var map = tracker.Freeze();
            var now = await File.ReadAllBytesAsync(image);
            for (long b = 0; b < Size / Block; b++)
            {
                var range = new Range((int)(b * Block), (int)((b + 1) * Block));
                if (!now.AsSpan(range).SequenceEqual(baseline.AsSpan(range)))
                {
                    changedBlocks++;
                    Assert.True(map[b] >= since, $"round {round}: block {b} changed on the device but its mark is {map[b]} (period {since})");
                }
            }
        }
        Assert.True(changedBlocks > Rounds, $"the writers changed only {changedBlocks} blocks in {Rounds} rounds");
        await tracker.DisposeAsync();
        await device.DisposeAsync();
    }

    private static async Task RunAndKillAsync(string image, string sidecar, int seed, int delayMs)
    {
        var dotnet = Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet";
        var psi = new ProcessStartInfo(dotnet) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "exec", typeof(TrackerCrashWriter).Assembly.Location, "tracker-crash-writer", image, sidecar, seed.ToString() })
        {
            psi.ArgumentList.Add(a);
        }
        using var child = Process.Start(psi)!;
        var line = await child.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
        if (line?.StartsWith("READY", StringComparison.Ordinal) != true)
        {
            var error = await child.StandardError.ReadToEndAsync();
            throw new Xunit.Sdk.XunitException($"writer did not start: {line} {error}");
        }
        await Task.Delay(delayMs);
        if (child.HasExited)
        {
            var error = await child.StandardError.ReadToEndAsync();
            throw new Xunit.Sdk.XunitException($"writer died by itself: {error}");
        }
        child.Kill();
        await child.WaitForExitAsync();
    }
}
