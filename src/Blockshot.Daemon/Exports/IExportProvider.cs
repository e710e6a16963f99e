using Blockshot.Core;

namespace Blockshot.Daemon.Exports;

/// <summary>
/// A kind of export (NBD, FUSE…). Providers are registered by type name; a type a build lacks is
/// registered as unavailable, so requests for it get a clear error instead of "unknown type".
/// </summary>
internal interface IExportProvider
{
    /// <summary>The type name.</summary>
    string Type { get; }

    /// <summary>Null when available; otherwise why not.</summary>
    string? UnavailableReason { get; }

    /// <summary>Where clients find export <paramref name="name"/> right now (e.g. an NBD URI), or null.</summary>
    string? UriOf(string name);

    /// <summary>
    /// Starts exporting <paramref name="slot"/>: a device's slot, or a slot over a snapshot's export node.
    /// The export does not own the slot.
    /// </summary>
    Task<IExportHandle> StartAsync(ExportRequest request, Slot slot);
}
