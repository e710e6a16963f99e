namespace Blockshot.Daemon.Control;

/// <summary>A control connection's event subscription, as methods see it.</summary>
internal interface ISubscriptionHost
{
    /// <summary>Subscribes to events matching <paramref name="patterns"/> (names, or prefixes ending in <c>*</c>); replaces any earlier set.</summary>
    IReadOnlyList<string> Subscribe(IReadOnlyList<string> patterns);

    /// <summary>Stops events; false when there was no subscription.</summary>
    bool Unsubscribe();
}
