namespace Blockshot.Daemon.ChangeTracking;

/// <summary>Change tracking asked for when a device is added.</summary>
/// <param name="BlockSize">Bytes per tracking block, or null for 64 KiB.</param>
/// <param name="Sidecar">The sidecar path, <c>none</c> for memory only, or null for the default place.</param>
/// <param name="Store">Where else the map goes: null or <c>sidecar</c> (nowhere else), or <c>qcow2-bitmap[:NAME]</c>.</param>
internal sealed record TrackRequest(int? BlockSize, string? Sidecar, string? Store = null);
