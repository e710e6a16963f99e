using Blockshot.Core;
using Blockshot.Daemon.Protocol;
using Blockshot.Nbd;

namespace Blockshot.Daemon.Exports;

/// <summary>NBD exports on the daemon's one NBD server; each export holds its device's slot.</summary>
internal sealed class NbdExportProvider(NbdServer server) : IExportProvider
{
    public string Type => "nbd";

    public string? UnavailableReason => null;

    public Task<IExportHandle> StartAsync(ExportRequest request, Slot slot)
    {
        if (request.Path is not null || request.Loop)
        {
            throw new ControlException(ControlErrorCodes.InvalidParams, "path and loop apply to fuse exports only");
        }
        NbdExport export;
        try
        {
            export = new NbdExport(request.Name, slot, request.ReadOnly, request.Description);
            server.AddExport(export);
        }
        catch (ArgumentException e)
        {
            throw new ControlException(ControlErrorCodes.InvalidParams, e.Message, e);
        }
        catch (InvalidOperationException e)
        {
            throw new ControlException(ControlErrorCodes.AlreadyExists, e.Message, e);
        }
        return Task.FromResult<IExportHandle>(new Handle(server, request.Name));
    }

    /// <summary>The URI of export <paramref name="name"/> on the first endpoint, e.g. <c>nbd+unix:///disk?socket=/x</c>.</summary>
    public string? UriOf(string name)
    {
        foreach (var endpoint in server.Endpoints)
        {
            if (endpoint.StartsWith("unix:", StringComparison.Ordinal))
            {
                return $"nbd+unix:///{Uri.EscapeDataString(name)}?socket={endpoint["unix:".Length..]}";
            }
            if (endpoint.StartsWith("tcp:", StringComparison.Ordinal))
            {
                return $"nbd://{endpoint["tcp:".Length..]}/{Uri.EscapeDataString(name)}";
            }
        }
        return null;
    }

    private sealed class Handle(NbdServer server, string name) : IExportHandle
    {
        public int Clients => server.ClientsOf(name);

        public string? Path => null;

        public string? LoopDevice => null;

        public Task StopAsync() => server.RemoveExportAsync(name);
    }
}
