using Blockshot.Daemon.Devices;
using Blockshot.Daemon.Protocol;

namespace Blockshot.Daemon.Exports;

/// <summary>An export type this build does not have: every request gets <see cref="ControlErrorCodes.NotAvailable"/>.</summary>
internal sealed class UnavailableExportProvider(string type, string reason) : IExportProvider
{
    public string Type { get; } = type;

    public string? UnavailableReason { get; } = reason;

    public string? UriOf(string name) => null;

    public Task<IExportHandle> StartAsync(ExportRequest request, Device device) =>
        throw new ControlException(ControlErrorCodes.NotAvailable, $"{Type} exports are not available in this build: {UnavailableReason}");
}
