using Blockshot.Daemon.Protocol;
using Blockshot.Filters;
using static Blockshot.Daemon.Control.ParamSpec;

namespace Blockshot.Daemon.Control.Methods;

/// <summary><c>filter.*</c>: filters in and out of a live device's stack.</summary>
internal static class FilterMethods
{
    private static readonly ParamSpec Timeout = Opt("timeout-ms", ParamType.Integer, "how long requests in flight may take to drain", "10000");

    public static IEnumerable<RpcMethod> Create(DaemonServices s)
    {
        var r = s.Registry;
        yield return new("filter.insert", "Insert a filter at the top of a device's stack while clients stay connected",
            [
                Req("device", ParamType.String, "device name"),
                Req("type", ParamType.String, "filter type (see filter.types)"),
                Opt("name", ParamType.String, "name in the stack", "the type"),
                Opt("settings", ParamType.Settings, "the filter's settings, e.g. {\"bps\": \"50M\"}", "{}"),
                Timeout,
            ],
            "device-info",
            async (p, _, _) =>
            {
                await r.InsertFilterAsync(p.String("device"), p.String("type"), p.OptionalString("name"), p.Settings("settings"),
                    p.Milliseconds("timeout-ms", Registry.DefaultTimeout)).ConfigureAwait(false);
                return Json.Of((await r.GetDeviceAsync(p.String("device")).ConfigureAwait(false)).ToInfo());
            });

        yield return new("filter.remove", "Remove a filter by name; the stack beneath it is left as it was",
            [Req("device", ParamType.String, "device name"), Req("name", ParamType.String, "filter name"), Timeout],
            "device-info",
            async (p, _, _) =>
            {
                await r.RemoveFilterAsync(p.String("device"), p.String("name"), p.Milliseconds("timeout-ms", Registry.DefaultTimeout)).ConfigureAwait(false);
                return Json.Of((await r.GetDeviceAsync(p.String("device")).ConfigureAwait(false)).ToInfo());
            });

        yield return new("filter.types", "List the filter types and their settings", [], "array of filter-type",
            (_, _, _) => Task.FromResult(Json.Of(Types())));
    }

    public static List<FilterTypeDescription> Types() =>
    [
        .. FilterCatalog.Types.Select(t => new FilterTypeDescription
        {
            Type = t.Type,
            Description = t.Description,
            Settings = [.. t.Settings.Select(x => new ParamInfo { Name = x.Name, Type = "string", Description = x.Description, Default = x.Default })],
        }),
    ];
}
