namespace Blockshot.Daemon.Protocol;

/// <summary>A device as <c>device.list</c> and <c>device.get</c> report it.</summary>
public sealed class DeviceInfo
{
    /// <summary>The device name.</summary>
    public string Name { get; init; } = "";

    /// <summary>The image file or host block device behind the device.</summary>
    public string File { get; init; } = "";

    /// <summary>The image format (<c>raw</c>).</summary>
    public string Format { get; init; } = "";

    /// <summary>Size in bytes.</summary>
    public long Size { get; init; }

    /// <summary>True when the device refuses writes.</summary>
    public bool ReadOnly { get; init; }

    /// <summary>True while suspended by <c>device.suspend</c>.</summary>
    public bool Suspended { get; init; }

    /// <summary>The stack from the top filter to the leaf, e.g. <c>throttle → raw(/srv/disk.raw)</c>.</summary>
    public string Stack { get; init; } = "";

    /// <summary>The filters, top first.</summary>
    public List<FilterInfo> Filters { get; init; } = [];

    /// <summary>Names of the exports bound to the device.</summary>
    public List<string> Exports { get; init; } = [];

    /// <summary>Ids of the jobs using the device.</summary>
    public List<string> Jobs { get; init; } = [];

    /// <summary>Requests in flight in the stack right now.</summary>
    public int InFlight { get; init; }

    /// <summary>Set when the leaf could not be reopened and every request fails; says why.</summary>
    public string? Error { get; init; }
}
