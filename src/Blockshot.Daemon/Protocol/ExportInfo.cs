namespace Blockshot.Daemon.Protocol;

/// <summary>An export as <c>export.list</c> reports it.</summary>
public sealed class ExportInfo
{
    /// <summary>The export name clients ask for.</summary>
    public string Name { get; init; } = "";

    /// <summary>The device it is bound to.</summary>
    public string Device { get; init; } = "";

    /// <summary>The export type (<c>nbd</c>, <c>fuse</c>).</summary>
    public string Type { get; init; } = "";

    /// <summary>True when clients may not write.</summary>
    public bool ReadOnly { get; init; }

    /// <summary>A description shown to clients.</summary>
    public string? Description { get; init; }

    /// <summary>Clients attached right now.</summary>
    public int Clients { get; init; }

    /// <summary>Where clients find it, e.g. <c>nbd+unix:///disk?socket=/run/blockshot/nbd.sock</c>.</summary>
    public string? Uri { get; init; }

    /// <summary>FUSE: the regular file the device is mounted on.</summary>
    public string? Path { get; init; }

    /// <summary>FUSE with a loop device: its path, e.g. <c>/dev/loop3</c>.</summary>
    public string? LoopDevice { get; init; }
}
