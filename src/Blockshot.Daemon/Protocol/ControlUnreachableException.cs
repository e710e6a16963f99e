namespace Blockshot.Daemon.Protocol;

/// <summary>The daemon's control socket could not be reached (no daemon, wrong path, no permission).</summary>
public sealed class ControlUnreachableException(string message, Exception? inner = null) : IOException(message, inner);
