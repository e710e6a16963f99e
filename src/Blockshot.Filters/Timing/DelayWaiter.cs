using System.Threading.Tasks.Sources;

namespace Blockshot.Filters.Timing;

/// <summary>One reusable wait of a <see cref="DelayQueue"/>; returned to the queue's pool once awaited.</summary>
internal sealed class DelayWaiter(DelayQueue owner) : IValueTaskSource
{
    private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };

    public short Version => _core.Version;

    public void Complete() => _core.SetResult(true);

    public void GetResult(short token)
    {
        try
        {
            _core.GetResult(token);
        }
        finally
        {
            _core.Reset();
            owner.Return(this);
        }
    }

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
