using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Blockshot.Cli.Client;
using Blockshot.Daemon.Protocol;

namespace Blockshot.Cli.Commands;

/// <summary><c>blockshot events</c>: print the daemon's events as they happen.</summary>
internal static class EventsCommand
{
    public static Command Create()
    {
        var filter = new Option<string[]>("--filter") { Description = "Only these events: names or prefixes ending in * (repeatable), e.g. --filter 'job.*'" };
        var count = new Option<int?>("--count", "-n") { Description = "Exit after this many events" };
        var command = new Command("events", "Print the daemon's events (devices, exports, clients, jobs) until interrupted") { filter, count };
        command.SetAction(DaemonCall.Action(async (parse, client, ct) =>
        {
            var patterns = new JsonArray([.. (parse.GetValue(filter) ?? []).Select(p => (JsonNode)p)]);
            await client.CallAsync("events.subscribe", new JsonObject { ["events"] = patterns }, ct).ConfigureAwait(false);
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            using var sigint = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, c =>
            {
                c.Cancel = true;
                stop.Cancel();
            });
            using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, c =>
            {
                c.Cancel = true;
                stop.Cancel();
            });
            var json = ClientOptions.Json(parse);
            var left = parse.GetValue(count);
            try
            {
                await foreach (var message in client.Events.ReadAllAsync(stop.Token).ConfigureAwait(false))
                {
                    Console.Out.WriteLine(json ? JsonSerializer.SerializeToNode(message, ProtocolJsonContext.Default.EventMessage)!.ToJsonString(Printer.Compact) : Text(message));
                    await Console.Out.FlushAsync(stop.Token).ConfigureAwait(false);
                    if (left is not null && --left <= 0)
                    {
                        return ExitCodes.Success;
                    }
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return ExitCodes.Success;
            }
            throw new CliException("the daemon closed the connection", ExitCodes.DaemonUnreachable);
        }));
        return command;
    }

    /// <summary>One line per event: time, name, then the data as key=value.</summary>
    public static string Text(EventMessage message)
    {
        var fields = new List<string>();
        foreach (var (key, value) in message.Data)
        {
            fields.Add(value switch
            {
                JsonObject o when o["name"] is { } name => $"{key}={name}",
                JsonObject o when o["id"] is { } jid => $"{key}={jid} state={o["state"]} done={o["bytes-done"]}/{o["bytes-total"]}{(o["error"] is { } e ? $" error=\"{e}\"" : "")}",
                JsonValue v when v.TryGetValue<string>(out var text) => $"{key}={text}",
                null => $"{key}=null",
                _ => $"{key}={value.ToJsonString()}",
            });
        }
        return $"{message.Time.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture)} {message.Event} {string.Join(' ', fields)}";
    }
}
