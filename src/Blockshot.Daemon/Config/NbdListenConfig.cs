namespace Blockshot.Daemon.Config;

/// <summary>Where the NBD server listens: a Unix socket, or a TCP port and address.</summary>
/// <param name="Socket">Unix socket path.</param>
/// <param name="Port">TCP port.</param>
/// <param name="Bind">TCP address (default 127.0.0.1).</param>
public sealed record NbdListenConfig(string? Socket, int? Port, string? Bind);
