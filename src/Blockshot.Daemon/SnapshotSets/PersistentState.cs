using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Blockshot.Daemon.SnapshotSets;

/// <summary>
/// The daemon's record of devices with persistent snapshots, so they reopen when the device is added
/// again after a restart (from the configuration or by <c>device add</c>). One JSON file, replaced
/// atomically (write, fsync, rename). The snapshots' content lives in each device's exception log; this
/// file only says where to find it.
/// </summary>
internal sealed class PersistentState(string path)
{
    private readonly object _sync = new();

    /// <summary>One device's persistent CBW.</summary>
    public sealed record Entry(string Device, string File, string Storage, int ChunkSize, string Log, long LimitBytes, long GrowStepBytes, long InitialBytes);

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
            entries.Add(new Entry(
                (string)e["device"]!, (string)e["file"]!, (string)e["storage"]!, (int)e["chunk-size"]!, (string)e["log"]!,
                (long)e["limit"]!, (long)e["grow-step"]!, (long)e["initial"]!));
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
