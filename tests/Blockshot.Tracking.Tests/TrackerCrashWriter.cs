using Blockshot.Core;
using Blockshot.Core.Platform;
using Blockshot.Drivers;

namespace Blockshot.Tracking.Tests;

/// <summary>
/// The process the tracking crash test kills: it opens the device with its sidecar and writes random
/// data (overlapping writes from several workers, some write-zeroes) until it is killed.
/// </summary>
public static class TrackerCrashWriter
{
    public const int BlockSize = 64 << 10;

    public static async Task<int> Main(string[] args)
    {
        if (args.Length != 4 || args[0] != "tracker-crash-writer")
        {
            await Console.Error.WriteLineAsync("usage: tracker-crash-writer IMAGE SIDECAR SEED");
            return 2;
        }
        var (image, sidecar, seed) = (args[1], args[2], int.Parse(args[3]));
        var (device, tracker) = await OpenAsync(image, sidecar);
        Console.WriteLine($"READY {tracker.Generation} {tracker.Period}");
        var workers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            var rng = new Random((seed * 31) + w);
            var buffer = new byte[200_000];
            while (true)
            {
                var n = rng.Next(1, buffer.Length);
                var at = rng.NextInt64(0, device.Size - n);
                if (rng.Next(8) == 0)
                {
                    await tracker.WriteZeroesAsync(at, n, IoFlags.None);
                }
                else
                {
                    rng.NextBytes(buffer.AsSpan(0, n));
                    await tracker.WriteAsync(at, buffer.AsMemory(0, n), IoFlags.None);
                }
            }
        }));
        await Task.WhenAll(workers);
        return 0;
    }

    public static async Task<(RawFileNode Device, ChangeTracker Tracker)> OpenAsync(string image, string sidecar)
    {
        var device = RawFileNode.Open(image);
        var tracker = await ChangeTracker.OpenAsync(device, new TrackerOptions
        {
            BlockSize = BlockSize,
            SidecarPath = sidecar,
            Identity = () => DeviceIdentity.Of(image),
            Heartbeat = TimeSpan.FromMilliseconds(100),
        });
        return (device, tracker);
    }
}
