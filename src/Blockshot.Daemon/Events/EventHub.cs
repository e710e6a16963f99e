using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Blockshot.Daemon.Protocol;
using Microsoft.Extensions.Logging;

namespace Blockshot.Daemon.Events;

/// <summary>
/// Publishes events: each is numbered, serialized once as a JSON-RPC notification and handed to every
/// subscriber that wants it. Subscribers must not block (control connections queue and drop), so a
/// slow client never holds up the daemon.
/// </summary>
internal sealed class EventHub(ILogger logger)
{
    private static readonly JsonSerializerOptions LogJson = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    // Guards _subscribers (copy-on-write: readers take the array without locking).
    private readonly Lock _lock = new();
    private IEventSubscriber[] _subscribers = [];
    private long _seq;

    /// <summary>Number of subscribers.</summary>
    public int SubscriberCount => Volatile.Read(ref _subscribers).Length;

    /// <summary>Adds a subscriber.</summary>
    public void Subscribe(IEventSubscriber subscriber)
    {
        lock (_lock)
        {
            if (Array.IndexOf(_subscribers, subscriber) < 0)
            {
                _subscribers = [.. _subscribers, subscriber];
            }
        }
    }

    /// <summary>Removes a subscriber.</summary>
    public void Unsubscribe(IEventSubscriber subscriber)
    {
        lock (_lock)
        {
            _subscribers = [.. _subscribers.Where(s => s != subscriber)];
        }
    }

    /// <summary>Publishes <paramref name="name"/> with <paramref name="data"/>.</summary>
    public void Publish(string name, JsonObject data)
    {
        var seq = Interlocked.Increment(ref _seq);
        var message = new EventMessage { Event = name, Seq = seq, Time = DateTimeOffset.UtcNow, Data = data };
        if (name != EventNames.JobProgress)
        {
            DaemonLog.Event(logger, name, data.ToJsonString(LogJson));
        }
        var subscribers = Volatile.Read(ref _subscribers);
        if (subscribers.Length == 0)
        {
            return;
        }
        var line = Serialize(message);
        foreach (var subscriber in subscribers)
        {
            if (subscriber.Wants(name))
            {
                subscriber.Deliver(name, line);
            }
        }
    }

    /// <summary>Serializes a notification line for <paramref name="message"/>.</summary>
    public static byte[] Serialize(EventMessage message)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("jsonrpc", "2.0");
            writer.WriteString("method", "event");
            writer.WritePropertyName("params");
            JsonSerializer.Serialize(writer, message, ProtocolJsonContext.Default.EventMessage);
            writer.WriteEndObject();
        }
        return buffer.ToArray();
    }
}
