using Blockshot.Daemon.Protocol;

namespace Blockshot.Daemon.Exports;

/// <summary>An export the registry knows: what was asked, the device, the running handle.</summary>
internal sealed record ExportRecord(ExportRequest Request, string Device, IExportHandle Handle, IExportProvider Provider)
{
    public ExportInfo ToInfo() => new()
    {
        Name = Request.Name,
        Device = Device,
        Type = Request.Type,
        ReadOnly = Request.ReadOnly,
        Description = Request.Description,
        Clients = Handle.Clients,
        Uri = Provider.UriOf(Request.Name),
        Path = Handle.Path,
        LoopDevice = Handle.LoopDevice,
    };
}
