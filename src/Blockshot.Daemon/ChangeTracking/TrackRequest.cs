namespace Blockshot.Daemon.ChangeTracking;

/// <summary>Change tracking asked for when a device is added.</summary>
/// <param name="BlockSize">Bytes per tracking block, or null for 64 KiB.</param>
/// <param name="Sidecar">The sidecar path, <c>none</c> for memory only, or null for the default place.</param>
internal sealed record TrackRequest(int? BlockSize, string? Sidecar);
