using Blockshot.Filters;

namespace Blockshot.Daemon.Devices;

/// <summary>A filter in a device's stack: its name there, its template, and the job that owns it (if any).</summary>
/// <param name="Name">Unique within the device.</param>
/// <param name="Template">Builds the filter node; holds the state that outlives rebuilds.</param>
/// <param name="OwnerJob">The job that inserted it and alone may remove it (a mirror), or null.</param>
internal sealed record StackEntry(string Name, FilterTemplate Template, string? OwnerJob = null);
