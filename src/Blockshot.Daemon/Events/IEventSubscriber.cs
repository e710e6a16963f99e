namespace Blockshot.Daemon.Events;

/// <summary>Receives serialized event notifications it asked for.</summary>
internal interface IEventSubscriber
{
    /// <summary>True when the subscriber wants events named <paramref name="name"/>.</summary>
    bool Wants(string name);

    /// <summary>Takes one notification line (without the newline, shared by every subscriber: do not change it); must not block.</summary>
    void Deliver(string name, byte[] line);
}
