using System.Text.Json;
using System.Text.Json.Nodes;

namespace Blockshot.Daemon.Exports;

/// <summary>
/// The FUSE mounts this daemon made, with their loop devices, kept in a small JSON file beside the control
/// socket. A mount is recorded before it is made and forgotten once it is gone, so after the daemon is
/// killed (SIGKILL, a crash) the file names every mount and loop device that may be left behind; the next
/// start reads it with <see cref="ReadLeftovers"/> and cleans them (<see cref="FuseStaleCleaner"/>).
/// </summary>
internal sealed class FuseMountRecords(string file)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, FuseMountRecord> _records = new(StringComparer.Ordinal);

    /// <summary>The state file, e.g. <c>/run/blockshot/control.fuse-mounts.json</c>.</summary>
    public string File => file;

    /// <summary>The state file that belongs to the control socket <paramref name="controlPath"/>.</summary>
    public static string FileFor(string controlPath) =>
        System.IO.Path.Combine(System.IO.Path.GetDirectoryName(controlPath) ?? "/",
            System.IO.Path.GetFileNameWithoutExtension(controlPath) + ".fuse-mounts.json");

    /// <summary>Records a mount about to be made; throws <see cref="IOException"/> when the file cannot be written.</summary>
    public void Add(FuseMountRecord record) => Change(r => r[record.Path] = record);

    /// <summary>Records the loop device attached to the mount at <paramref name="path"/>.</summary>
    public void SetLoopDevice(string path, string? loopDevice) => Change(r =>
    {
        if (r.TryGetValue(path, out var record))
        {
            r[path] = record with { LoopDevice = loopDevice };
        }
    });

    /// <summary>Forgets the mount at <paramref name="path"/> (it is gone).</summary>
    public void Remove(string path) => Change(r => r.Remove(path));

    /// <summary>
    /// The mounts a previous run recorded and did not take away; empty when there is no file. A file that
    /// cannot be parsed throws <see cref="InvalidDataException"/>.
    /// </summary>
    public List<FuseMountRecord> ReadLeftovers()
    {
        string text;
        try
        {
            text = System.IO.File.ReadAllText(file);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return [];
        }
        var result = new List<FuseMountRecord>();
        try
        {
            foreach (var item in JsonNode.Parse(text)?["mounts"]?.AsArray() ?? [])
            {
                var path = item?["path"]?.GetValue<string>();
                if (path is null || !System.IO.Path.IsPathFullyQualified(path))
                {
                    throw new InvalidDataException($"a mount without an absolute path: {item?.ToJsonString()}");
                }
                result.Add(new FuseMountRecord(path, item!["export"]?.GetValue<string>() ?? "",
                    item["created-file"]?.GetValue<bool>() ?? false, item["loop-device"]?.GetValue<string>()));
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{file} is not a FUSE mount record: {e.Message}", e);
        }
        return result;
    }

    /// <summary>Removes the file once its leftovers are cleaned (and nothing is recorded since).</summary>
    public void ClearLeftovers() => Change(_ => { });

    private void Change(Action<Dictionary<string, FuseMountRecord>> change)
    {
        lock (_lock)
        {
            change(_records);
            Save();
        }
    }

    private void Save()
    {
        if (_records.Count == 0)
        {
            System.IO.File.Delete(file);
            return;
        }
        var mounts = new JsonArray();
        foreach (var record in _records.Values.OrderBy(r => r.Path, StringComparer.Ordinal))
        {
            mounts.Add(new JsonObject
            {
                ["path"] = record.Path,
                ["export"] = record.Export,
                ["created-file"] = record.CreatedFile,
                ["loop-device"] = record.LoopDevice,
            });
        }
        var document = new JsonObject { ["pid"] = Environment.ProcessId, ["mounts"] = mounts };
        // Written whole and renamed over the old file, so a crash mid-write leaves the previous record.
        var temporary = file + ".tmp";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write))
        {
            stream.Write(System.Text.Encoding.UTF8.GetBytes(document.ToJsonString(new JsonSerializerOptions { WriteIndented = true })));
            stream.Flush(flushToDisk: true);
        }
        System.IO.File.Move(temporary, file, overwrite: true);
    }
}

/// <summary>One recorded FUSE mount.</summary>
/// <param name="Path">The mounted file, as a full path.</param>
/// <param name="Export">The export name it served.</param>
/// <param name="CreatedFile">True when the daemon created the (empty) mountpoint file, so cleanup removes it.</param>
/// <param name="LoopDevice">The loop device attached to it, or null.</param>
internal sealed record FuseMountRecord(string Path, string Export, bool CreatedFile, string? LoopDevice);
