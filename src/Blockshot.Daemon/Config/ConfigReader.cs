using System.Text.Json;
using Blockshot.Filters;

namespace Blockshot.Daemon.Config;

/// <summary>
/// Walks a configuration document and collects every error with its JSON path (<c>$.devices[1].file: …</c>)
/// instead of stopping at the first; <see cref="ConfigLoader"/> throws them together.
/// </summary>
internal sealed class ConfigReader(string baseDirectory)
{
    public List<string> Errors { get; } = [];

    public DaemonConfig ReadRoot(JsonElement root)
    {
        if (!Object(root, "$", ["control", "nbd", "devices", "exports"]))
        {
            return DaemonConfig.Empty;
        }
        var control = OptionalString(root, "$", "control");
        var nbd = root.TryGetProperty("nbd", out var n) ? ReadNbd(n, "$.nbd") : null;
        var devices = new List<DeviceConfig>();
        foreach (var (item, where) in Array(root, "$", "devices"))
        {
            if (ReadDevice(item, where) is { } device)
            {
                if (devices.Any(d => d.Name == device.Name))
                {
                    Errors.Add($"{where}.name: a device named '{device.Name}' is defined twice");
                }
                devices.Add(device);
            }
        }
        var exports = new List<ExportConfig>();
        foreach (var (item, where) in Array(root, "$", "exports"))
        {
            if (ReadExport(item, where) is { } export)
            {
                if (!devices.Any(d => d.Name == export.Device))
                {
                    Errors.Add($"{where}.device: no device named '{export.Device}' is defined");
                }
                var exportName = export.Name ?? export.Device;
                if (exports.Any(e => (e.Name ?? e.Device) == exportName))
                {
                    Errors.Add($"{where}.name: an export named '{exportName}' is defined twice");
                }
                exports.Add(export);
            }
        }
        return new DaemonConfig(control, nbd, devices, exports);
    }

    private NbdListenConfig? ReadNbd(JsonElement e, string where)
    {
        if (!Object(e, where, ["socket", "port", "bind"]))
        {
            return null;
        }
        var socket = OptionalString(e, where, "socket");
        int? port = null;
        if (e.TryGetProperty("port", out var p))
        {
            if (p.ValueKind != JsonValueKind.Number || !p.TryGetInt32(out var value) || value is < 0 or > 65535)
            {
                Errors.Add($"{where}.port: must be a whole number from 0 to 65535");
            }
            else
            {
                port = value;
            }
        }
        var bind = OptionalString(e, where, "bind");
        if (bind is not null && !System.Net.IPAddress.TryParse(bind, out _))
        {
            Errors.Add($"{where}.bind: '{bind}' is not an IP address");
        }
        if (socket is not null && (port is not null || bind is not null))
        {
            Errors.Add($"{where}: give either socket, or port (and bind), not both");
        }
        return new NbdListenConfig(socket, port, bind);
    }

    private DeviceConfig? ReadDevice(JsonElement e, string where)
    {
        if (!Object(e, where, ["name", "file", "format", "read-only", "direct", "locking", "filters"]))
        {
            return null;
        }
        var name = RequiredName(e, where, "name", "device");
        var file = RequiredString(e, where, "file");
        var format = OptionalString(e, where, "format");
        if (format is not null and not ("raw" or "qcow2"))
        {
            Errors.Add($"{where}.format: '{format}' is not raw or qcow2");
        }
        var filters = new List<FilterConfig>();
        foreach (var (item, at) in Array(e, where, "filters"))
        {
            if (ReadFilter(item, at) is { } filter)
            {
                if (filters.Any(f => (f.Name ?? f.Type) == (filter.Name ?? filter.Type)))
                {
                    Errors.Add($"{at}.name: two filters of this device are named '{filter.Name ?? filter.Type}'");
                }
                filters.Add(filter);
            }
        }
        if (name is null || file is null)
        {
            return null;
        }
        return new DeviceConfig(where, name, Path.GetFullPath(file, baseDirectory), format, Bool(e, where, "read-only", false),
            Bool(e, where, "direct", false), Bool(e, where, "locking", true), filters);
    }

    private FilterConfig? ReadFilter(JsonElement e, string where)
    {
        if (!Object(e, where, ["type", "name", "settings"]))
        {
            return null;
        }
        var type = RequiredString(e, where, "type");
        var name = e.TryGetProperty("name", out _) ? RequiredName(e, where, "name", "filter") : null;
        var settings = new Dictionary<string, string>(StringComparer.Ordinal);
        if (e.TryGetProperty("settings", out var s))
        {
            if (s.ValueKind != JsonValueKind.Object)
            {
                Errors.Add($"{where}.settings: must be an object of setting names to values");
            }
            else
            {
                foreach (var property in s.EnumerateObject())
                {
                    switch (property.Value.ValueKind)
                    {
                        case JsonValueKind.String:
                            settings[property.Name] = property.Value.GetString()!;
                            break;
                        case JsonValueKind.Number:
                            settings[property.Name] = property.Value.GetRawText();
                            break;
                        case JsonValueKind.True or JsonValueKind.False:
                            settings[property.Name] = property.Value.ValueKind == JsonValueKind.True ? "true" : "false";
                            break;
                        default:
                            Errors.Add($"{where}.settings.{property.Name}: must be a string, a number or a boolean");
                            break;
                    }
                }
            }
        }
        if (type is null)
        {
            return null;
        }
        try
        {
            FilterCatalog.Create(type, settings);
        }
        catch (FilterSettingsException ex)
        {
            Errors.Add($"{where}{(ex.UnknownType ? ".type" : ".settings")}: {ex.Message}");
        }
        return new FilterConfig(where, type, name, settings);
    }

    private ExportConfig? ReadExport(JsonElement e, string where)
    {
        if (!Object(e, where, ["device", "type", "name", "read-only", "description", "path", "loop"]))
        {
            return null;
        }
        var device = RequiredString(e, where, "device");
        var type = OptionalString(e, where, "type") ?? "nbd";
        if (type is not ("nbd" or "fuse"))
        {
            Errors.Add($"{where}.type: '{type}' is not nbd or fuse");
        }
        var name = e.TryGetProperty("name", out _) ? RequiredName(e, where, "name", "export") : null;
        var description = OptionalString(e, where, "description");
        var path = OptionalString(e, where, "path");
        var loop = Bool(e, where, "loop", false);
        if (type == "fuse" && path is null && !e.TryGetProperty("path", out _))
        {
            Errors.Add($"{where}.path: required for a fuse export (the regular file to mount the device on)");
        }
        if (type != "fuse" && (path is not null || loop))
        {
            Errors.Add($"{where}: path and loop apply to fuse exports only");
        }
        return device is null ? null : new ExportConfig(where, device, type, name, Bool(e, where, "read-only", false), description,
            path is null ? null : Path.GetFullPath(path, baseDirectory), loop);
    }

    private bool Object(JsonElement e, string where, string[] keys)
    {
        if (e.ValueKind != JsonValueKind.Object)
        {
            Errors.Add($"{where}: must be an object");
            return false;
        }
        foreach (var property in e.EnumerateObject())
        {
            if (!keys.Contains(property.Name))
            {
                Errors.Add($"{where}.{property.Name}: unknown key (known: {string.Join(", ", keys)})");
            }
        }
        return true;
    }

    private IEnumerable<(JsonElement Item, string Where)> Array(JsonElement e, string where, string key)
    {
        if (!e.TryGetProperty(key, out var array))
        {
            yield break;
        }
        if (array.ValueKind != JsonValueKind.Array)
        {
            Errors.Add($"{where}.{key}: must be an array");
            yield break;
        }
        var i = 0;
        foreach (var item in array.EnumerateArray())
        {
            yield return (item, $"{where}.{key}[{i++}]");
        }
    }

    private string? RequiredString(JsonElement e, string where, string key)
    {
        if (!e.TryGetProperty(key, out var value))
        {
            Errors.Add($"{where}.{key}: required");
            return null;
        }
        if (value.ValueKind != JsonValueKind.String || string.IsNullOrEmpty(value.GetString()))
        {
            Errors.Add($"{where}.{key}: must be a non-empty string");
            return null;
        }
        return value.GetString();
    }

    private string? RequiredName(JsonElement e, string where, string key, string what)
    {
        var name = RequiredString(e, where, key);
        if (name is not null)
        {
            try
            {
                Registry.CheckName(name, what);
            }
            catch (Protocol.ControlException ex)
            {
                Errors.Add($"{where}.{key}: {ex.Message}");
                return null;
            }
        }
        return name;
    }

    private string? OptionalString(JsonElement e, string where, string key)
    {
        if (!e.TryGetProperty(key, out var value))
        {
            return null;
        }
        if (value.ValueKind != JsonValueKind.String || string.IsNullOrEmpty(value.GetString()))
        {
            Errors.Add($"{where}.{key}: must be a non-empty string");
            return null;
        }
        return value.GetString();
    }

    private bool Bool(JsonElement e, string where, string key, bool fallback)
    {
        if (!e.TryGetProperty(key, out var value))
        {
            return fallback;
        }
        if (value.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
        {
            Errors.Add($"{where}.{key}: must be true or false");
            return fallback;
        }
        return value.GetBoolean();
    }
}
