using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Blockshot.Daemon.SnapshotSets;

/// <summary>
/// The daemon's record of devices with persistent snapshots, so they reopen when the device is added
/// again after a restart (from the configuration or by <c>device add</c>). One JSON file, replaced
/// atomically (write, fsync, rename). The snapshots' content lives in each device's exception log; this
/// file only says where to find it, and, for a tracked device, each take's generation and periods and
/// where its changes were saved (so a reopened snapshot's dirty bitmap is the take's, not a superset).
/// </summary>
internal sealed class PersistentState(string path)
{
    private readonly object _sync = new();

    /// <summary>One device's persistent CBW.</summary>
    public sealed record Entry(string Device, string File, string Storage, int ChunkSize, string Log, long LimitBytes, long GrowStepBytes, long InitialBytes)
    {
        /// <summary>The takes of the device's tracked snapshots.</summary>
        public IReadOnlyList<TakeRecord> Takes { get; init; } = [];
    }

    /// <summary>A tracked snapshot's take: its change-tracking generation, the period before it and the one it ended, and its saved changes.</summary>
    public sealed record TakeRecord(string Snapshot, Guid Generation, byte Since, byte Period, string Map);

    public string Path { get; } = path;

    /// <summary>The entry for <paramref name="device"/> over <paramref name="file"/>, if any.</summary>
    public Entry? Find(string device, string file)
    {
        lock (_sync)
        {
            return Load().FirstOrDefault(e => e.Device == device && e.File == file);
        }
    }

    /// <summary>Records (or replaces) a device's entry.</summary>
    public void Put(Entry entry)
    {
        lock (_sync)
        {
            var entries = Load().Where(e => e.Device != entry.Device).ToList();
            entries.Add(entry);
            Save(entries);
        }
    }

    /// <summary>Records a take on a device's entry (replacing one of the same snapshot name).</summary>
    public void AddTake(string device, TakeRecord take)
    {
        lock (_sync)
        {
            var entries = Load();
            var i = entries.FindIndex(e => e.Device == device);
            if (i >= 0)
            {
                entries[i] = entries[i] with { Takes = [.. entries[i].Takes.Where(t => t.Snapshot != take.Snapshot), take] };
                Save(entries);
            }
        }
    }

    /// <summary>Forgets a take; returns it (its saved changes are the caller's to delete).</summary>
    public TakeRecord? RemoveTake(string device, string snapshot)
    {
        lock (_sync)
        {
            var entries = Load();
            var i = entries.FindIndex(e => e.Device == device);
            var take = i >= 0 ? entries[i].Takes.FirstOrDefault(t => t.Snapshot == snapshot) : null;
            if (take is not null)
            {
                entries[i] = entries[i] with { Takes = [.. entries[i].Takes.Where(t => t != take)] };
                Save(entries);
            }
            return take;
        }
    }

    /// <summary>Forgets a device's entry.</summary>
    public void Remove(string device)
    {
        lock (_sync)
        {
            var entries = Load();
            if (entries.RemoveAll(e => e.Device == device) > 0)
            {
                Save(entries);
            }
        }
    }

    private List<Entry> Load()
    {
        if (!File.Exists(Path))
        {
            return [];
        }
        var root = JsonNode.Parse(File.ReadAllText(Path))?["devices"]?.AsArray() ?? [];
        var entries = new List<Entry>();
        foreach (var e in root)
        {
            if (e is null)
            {
                continue;
            }
            var takes = new List<TakeRecord>();
            foreach (var t in e["takes"]?.AsArray() ?? [])
            {
                if (t is not null)
                {
                    takes.Add(new TakeRecord((string)t["snapshot"]!, Guid.Parse((string)t["generation"]!), (byte)(int)t["since"]!, (byte)(int)t["period"]!, (string)t["map"]!));
                }
            }
            entries.Add(new Entry(
                (string)e["device"]!, (string)e["file"]!, (string)e["storage"]!, (int)e["chunk-size"]!, (string)e["log"]!,
                (long)e["limit"]!, (long)e["grow-step"]!, (long)e["initial"]!)
            { Takes = takes });
        }
        return entries;
    }

    private void Save(List<Entry> entries)
    {
        var array = new JsonArray();
        foreach (var e in entries)
        {
            array.Add(new JsonObject
            {
                ["device"] = e.Device,
                ["file"] = e.File,
                ["storage"] = e.Storage,
                ["chunk-size"] = e.ChunkSize,
                ["log"] = e.Log,
                ["limit"] = e.LimitBytes,
                ["grow-step"] = e.GrowStepBytes,
                ["initial"] = e.InitialBytes,
                ["takes"] = new JsonArray([.. e.Takes.Select(t => (JsonNode)new JsonObject
                {
                    ["snapshot"] = t.Snapshot,
                    ["generation"] = t.Generation.ToString(),
                    ["since"] = t.Since,
                    ["period"] = t.Period,
                    ["map"] = t.Map,
                })]),
            });
        }
        var text = new JsonObject { ["version"] = 1, ["devices"] = array }.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        var directory = System.IO.Path.GetDirectoryName(Path) ?? ".";
        Directory.CreateDirectory(directory);
        var temporary = Path + ".tmp-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write))
        {
            stream.Write(System.Text.Encoding.UTF8.GetBytes(text));
            stream.Flush(flushToDisk: true);
        }
        File.Move(temporary, Path, overwrite: true);
    }
}
