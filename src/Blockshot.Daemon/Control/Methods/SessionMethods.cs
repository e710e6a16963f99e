using System.Text.Json.Nodes;
using Blockshot.Daemon.Events;
using Blockshot.Daemon.Protocol;
using static Blockshot.Daemon.Control.ParamSpec;

namespace Blockshot.Daemon.Control.Methods;

/// <summary><c>describe</c>, <c>daemon.info</c> and <c>events.*</c>.</summary>
internal static class SessionMethods
{
    public static IEnumerable<RpcMethod> Create(DaemonServices s, Func<IReadOnlyList<RpcMethod>> methods, Func<IEnumerable<ExportTypeInfo>> exportTypes)
    {
        yield return new("describe", "List the methods with their parameters, the events, the error codes, the filter and export types", [],
            "describe-info",
            (_, _, _) => Task.FromResult(Json.Of(new DescribeInfo
            {
                Protocol = RpcDispatcher.ProtocolName,
                Version = RpcDispatcher.ProtocolVersion,
                Methods = [.. methods().Select(m => m.ToInfo())],
                Events = [.. EventNames.All],
                Errors = [.. ControlErrorCodes.All.Select(e => new ErrorCodeInfo { Code = e.Code, Name = e.Name, Meaning = e.Meaning })],
                FilterTypes = FilterMethods.Types(),
                ExportTypes = [.. exportTypes()],
            })));

        yield return new("daemon.info", "The daemon's version, process, sockets and counts", [], "daemon-info",
            async (_, _, _) => Json.Of(await s.Info().ConfigureAwait(false)));

        yield return new("events.subscribe", "Receive event notifications on this connection ({\"method\":\"event\",\"params\":{...}})",
            [Opt("events", ParamType.StringArray, "event names, or prefixes ending in * (e.g. job.*)", "all")],
            "{events: [patterns]}",
            (p, context, _) =>
            {
                var patterns = p.Strings("events");
                foreach (var pattern in patterns)
                {
                    var prefix = pattern.EndsWith('*') ? pattern[..^1] : null;
                    if (prefix is null ? !EventNames.All.Any(e => e.Name == pattern) : !EventNames.All.Any(e => e.Name.StartsWith(prefix, StringComparison.Ordinal)))
                    {
                        throw RpcParams.Invalid($"no event matches '{pattern}' (call 'describe' for the list)");
                    }
                }
                var chosen = context.Subscriptions.Subscribe(patterns);
                return Task.FromResult<JsonNode?>(new JsonObject { ["events"] = new JsonArray([.. chosen.Select(c => (JsonNode)c)]) });
            });

        yield return new("events.unsubscribe", "Stop event notifications on this connection", [], "{unsubscribed: bool}",
            (_, context, _) => Task.FromResult<JsonNode?>(new JsonObject { ["unsubscribed"] = context.Subscriptions.Unsubscribe() }));
    }
}
