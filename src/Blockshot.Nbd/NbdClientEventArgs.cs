namespace Blockshot.Nbd;

/// <summary>A client connected to or disconnected from an export.</summary>
/// <param name="ConnectionId">A number unique within the server.</param>
/// <param name="Export">The export name.</param>
/// <param name="Remote">The peer address, or "unix" for Unix sockets.</param>
public sealed record NbdClientEventArgs(long ConnectionId, string Export, string Remote);
