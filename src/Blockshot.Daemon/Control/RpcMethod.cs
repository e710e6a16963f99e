using System.Text.Json.Nodes;
using Blockshot.Daemon.Protocol;

namespace Blockshot.Daemon.Control;

/// <summary>A control method: its name, parameters, what it returns, and the handler.</summary>
internal sealed record RpcMethod(
    string Name,
    string Description,
    IReadOnlyList<ParamSpec> Params,
    string Result,
    Func<RpcParams, RpcContext, CancellationToken, Task<JsonNode?>> Handler)
{
    public MethodInfo ToInfo() => new()
    {
        Name = Name,
        Description = Description,
        Params = [.. Params.Select(p => p.ToInfo())],
        Result = Result,
    };
}
