using Blockshot.Core;
using Blockshot.Core.Platform;
using Blockshot.Drivers;
using Blockshot.Snapshots.Storage;

namespace Blockshot.Snapshots.Tests;

/// <summary>
/// The process the persistence crash test kills: it opens a persistent snapshot set-up (taking the
/// snapshot the first time), then writes random data through the filter until it is killed.
/// </summary>
public static class CrashWriter
{
    public const int ChunkSize = 64 << 10;

    public static async Task<int> Main(string[] args)
    {
        if (args.Length != 5 || args[0] != "snapshot-crash-writer")
        {
            await Console.Error.WriteLineAsync("usage: snapshot-crash-writer ORIGIN STORE LOG SEED");
            return 2;
        }
        var (originPath, storePath, logPath, seed) = (args[1], args[2], args[3], int.Parse(args[4]));
        var filter = await OpenAsync(originPath, storePath, logPath);
        if (filter.Snapshots.Count == 0)
        {
            await filter.AddSnapshotAsync("crash");
        }
        Console.WriteLine("READY");
        var workers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            var rng = new Random(seed * 31 + w);
            var buffer = new byte[200_000];
            for (var i = 0; ; i++)
            {
                var n = rng.Next(1, buffer.Length);
                var at = rng.NextInt64(0, filter.Size - n);
                rng.NextBytes(buffer.AsSpan(0, n));
                await filter.WriteAsync(at, buffer.AsMemory(0, n), IoFlags.None);
            }
        }));
        await Task.WhenAll(workers);
        return 0;
    }

    public static async Task<CbwFilter> OpenAsync(string originPath, string storePath, string logPath, TimeSpan? lease = null)
    {
        var origin = RawFileNode.Open(originPath);
        var store = new NodeDiffStore(RawFileNode.Open(storePath), ChunkSize, new DiffStoreOptions());
        return await CbwFilter.OpenPersistentAsync(origin, store, new SnapshotPersistence
        {
            LogPath = logPath,
            Identity = () => DeviceIdentity.Of(originPath),
            Heartbeat = TimeSpan.FromMilliseconds(100),
            Lease = lease ?? TimeSpan.FromSeconds(10),
        });
    }
}
