namespace Blockshot.Daemon.Protocol;

/// <summary>What <c>daemon.info</c> reports.</summary>
public sealed class DaemonInfo
{
    /// <summary>The Blockshot version.</summary>
    public string Version { get; init; } = "";

    /// <summary>The control protocol name and version, e.g. <c>blockshot-control/1</c>.</summary>
    public string Protocol { get; init; } = "";

    /// <summary>The daemon's process id.</summary>
    public int Pid { get; init; }

    /// <summary>The control socket path.</summary>
    public string Control { get; init; } = "";

    /// <summary>Where the NBD server listens.</summary>
    public List<string> Nbd { get; init; } = [];

    /// <summary>Number of devices.</summary>
    public int Devices { get; init; }

    /// <summary>Number of exports.</summary>
    public int Exports { get; init; }

    /// <summary>Number of jobs listed (running and finished).</summary>
    public int Jobs { get; init; }

    /// <summary>Control connections open right now.</summary>
    public int ControlClients { get; init; }

    /// <summary>Control connections subscribed to events.</summary>
    public int Subscribers { get; init; }

    /// <summary>When the daemon started.</summary>
    public DateTimeOffset Started { get; init; }
}
