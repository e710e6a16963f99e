using Blockshot.Core;
using Blockshot.Drivers;
using Blockshot.Snapshots.Storage;

namespace Blockshot.Snapshots.Tests;

/// <summary>A device (memory) in a slot, with a CBW filter inserted the way the daemon does it.</summary>
public sealed class Rig : IAsyncDisposable
{
    public Rig(long size = 8 << 20, int chunkSize = 64 << 10, DiffStore? store = null, BlockNode? origin = null)
    {
        Origin = origin ?? new MemoryNode(size);
        Store = store ?? new NodeDiffStore(new MemoryNode(1L << 40), chunkSize, new DiffStoreOptions());
        Slot = new Slot(Origin, name: "dev");
        Filter = new CbwFilter(Origin, Store);
    }

    public BlockNode Origin { get; }

    public DiffStore Store { get; }

    public Slot Slot { get; }

    public CbwFilter Filter { get; }

    public long Size => Origin.Size;

    /// <summary>Suspends the slot, inserts the filter if needed, adds a snapshot, resumes.</summary>
    public async Task<Snapshot> TakeAsync(string name, SnapshotOptions? options = null)
    {
        await Slot.SuspendAsync(TimeSpan.FromSeconds(10));
        try
        {
            if (Slot.Current != Filter)
            {
                Slot.Replace(Filter);
            }
            return await Filter.AddSnapshotAsync(name, options);
        }
        finally
        {
            Slot.Resume();
        }
    }

    public async Task DestroyAsync(Snapshot snapshot)
    {
        await Filter.RemoveSnapshotAsync(snapshot);
        if (Filter.Snapshots.Count == 0)
        {
            await Slot.SwapAsync(_ => Origin, TimeSpan.FromSeconds(10));
        }
    }

    public async Task FillAsync(int seed)
    {
        var buffer = new byte[1 << 20];
        for (long at = 0; at < Size; at += buffer.Length)
        {
            var n = (int)Math.Min(buffer.Length, Size - at);
            Patterns.Fill(buffer.AsSpan(0, n), at, seed);
            await Slot.WriteAsync(at, buffer.AsMemory(0, n), IoFlags.None);
        }
    }

    public static async Task<byte[]> ReadAllAsync(BlockNode node)
    {
        var all = new byte[node.Size];
        for (long at = 0; at < node.Size; at += 1 << 20)
        {
            var n = (int)Math.Min(1 << 20, node.Size - at);
            await node.ReadAsync(at, all.AsMemory((int)at, n));
        }
        return all;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var s in Filter.Snapshots.ToArray())
        {
            await Filter.RemoveSnapshotAsync(s);
        }
        await Store.DisposeAsync();
        await Slot.DisposeAsync();
        await Origin.DisposeAsync();
    }
}
