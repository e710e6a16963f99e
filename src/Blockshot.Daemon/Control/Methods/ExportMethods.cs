using System.Text.Json.Nodes;
using static Blockshot.Daemon.Control.ParamSpec;

namespace Blockshot.Daemon.Control.Methods;

/// <summary><c>export.*</c>: exports bound to device slots.</summary>
internal static class ExportMethods
{
    public static IEnumerable<RpcMethod> Create(DaemonServices s)
    {
        var r = s.Registry;
        yield return new("export.add", "Export a device's slot",
            [
                Req("device", ParamType.String, "device name"),
                Opt("type", ParamType.String, "nbd or fuse", "nbd"),
                Opt("name", ParamType.String, "export name clients ask for", "the device name"),
                Opt("read-only", ParamType.Boolean, "refuse writes", "false"),
                Opt("description", ParamType.String, "shown to clients (NBD)", null),
                Opt("path", ParamType.String, "fuse: the regular file to mount the device on, an absolute path (created if missing)", null),
                Opt("loop", ParamType.Boolean, "fuse: attach a loop device to the file", "false"),
            ],
            "export-info",
            async (p, _, _) => Json.Of(await r.AddExportAsync(p.String("device"), p.OptionalString("type") ?? "nbd", p.OptionalString("name"),
                p.Boolean("read-only"), p.OptionalString("description"), p.OptionalString("path"), p.Boolean("loop")).ConfigureAwait(false)));

        yield return new("export.remove", "Remove an export; its clients are disconnected after their requests in flight finish",
            [Req("name", ParamType.String, "export name")],
            "{removed: name}",
            async (p, _, _) =>
            {
                await r.RemoveExportAsync(p.String("name")).ConfigureAwait(false);
                return new JsonObject { ["removed"] = p.String("name") };
            });

        yield return new("export.list", "List exports with their device, type and clients", [], "array of export-info",
            async (_, _, _) => Json.Of(await r.ListExportsAsync().ConfigureAwait(false)));
    }
}
