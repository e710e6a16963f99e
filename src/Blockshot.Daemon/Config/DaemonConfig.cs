namespace Blockshot.Daemon.Config;

/// <summary>The declarative configuration applied when the daemon starts.</summary>
/// <param name="Control">The control socket path, unless the command line gives one.</param>
/// <param name="Nbd">Where the NBD server listens, unless the command line says.</param>
/// <param name="Devices">Devices to add, in order.</param>
/// <param name="Exports">Exports to add, after the devices.</param>
public sealed record DaemonConfig(string? Control, NbdListenConfig? Nbd, IReadOnlyList<DeviceConfig> Devices, IReadOnlyList<ExportConfig> Exports)
{
    /// <summary>An empty configuration.</summary>
    public static DaemonConfig Empty { get; } = new(null, null, [], []);
}
