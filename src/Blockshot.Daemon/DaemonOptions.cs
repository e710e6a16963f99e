namespace Blockshot.Daemon;

/// <summary>How the daemon listens (what the command line says; the configuration file fills the gaps).</summary>
public sealed record DaemonOptions
{
    /// <summary>The control socket both the daemon and the CLI use when told nothing else.</summary>
    public const string DefaultControlPath = "/run/blockshot/control.sock";

    /// <summary>The control socket path.</summary>
    public string ControlPath { get; init; } = DefaultControlPath;

    /// <summary>Serve NBD on this Unix socket. When neither this nor <see cref="NbdPort"/> is set: <c>nbd.sock</c> beside the control socket.</summary>
    public string? NbdSocket { get; init; }

    /// <summary>Serve NBD on this TCP port.</summary>
    public int? NbdPort { get; init; }

    /// <summary>The TCP address for <see cref="NbdPort"/>.</summary>
    public string NbdBind { get; init; } = "127.0.0.1";

    /// <summary>
    /// Where the daemon records its FUSE mounts and loop devices, so a start after a crash can clean what the
    /// crashed run left. Default: <c>control.fuse-mounts.json</c> beside the control socket.
    /// </summary>
    public string? FuseMountRecordPath { get; init; }

    /// <summary>The file that records devices with persistent snapshots; null: <c>snapshots.json</c> beside the control socket.</summary>
    public string? StatePath { get; init; }

    /// <summary>How long requests in flight may take to finish when the daemon stops.</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(10);
}
