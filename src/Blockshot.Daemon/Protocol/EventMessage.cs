using System.Text.Json.Nodes;

namespace Blockshot.Daemon.Protocol;

/// <summary>
/// An event notification's parameters. Subscribers receive
/// <c>{"jsonrpc":"2.0","method":"event","params":{...}}</c> lines with these fields.
/// </summary>
public sealed class EventMessage
{
    /// <summary>The event name, e.g. <c>job.progress</c>.</summary>
    public string Event { get; init; } = "";

    /// <summary>A number that grows by one per event the daemon publishes (gaps mean events not subscribed to or dropped).</summary>
    public long Seq { get; init; }

    /// <summary>When it happened.</summary>
    public DateTimeOffset Time { get; init; }

    /// <summary>The event's fields.</summary>
    public JsonObject Data { get; init; } = [];
}
