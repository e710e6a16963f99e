using Blockshot.Daemon.Protocol;

namespace Blockshot.Daemon.Control;

/// <summary>Who is calling: the connection id (for logs) and its subscription, if it can have one.</summary>
internal sealed class RpcContext(long connectionId, ISubscriptionHost? subscriptions)
{
    public long ConnectionId { get; } = connectionId;

    public ISubscriptionHost Subscriptions => subscriptions
        ?? throw new ControlException(ControlErrorCodes.InvalidState, "this caller cannot receive events");
}
