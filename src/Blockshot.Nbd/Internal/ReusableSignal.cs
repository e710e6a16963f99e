using System.Threading.Tasks.Sources;

namespace Blockshot.Nbd.Internal;

/// <summary>
/// A reusable one-waiter awaitable: <see cref="WaitAsync"/> completes when <see cref="Set"/> is
/// called, and resets itself when the waiter takes the result, ready for the next round. It lets a
/// long-lived loop wait for work without allocating per round.
/// </summary>
internal sealed class ReusableSignal : IValueTaskSource<bool>
{
    private ManualResetValueTaskSourceCore<bool> _core;

    public ReusableSignal(bool runContinuationsAsynchronously)
    {
        _core.RunContinuationsAsynchronously = runContinuationsAsynchronously;
    }

    /// <summary>Waits for the next <see cref="Set"/>; one waiter at a time.</summary>
    public ValueTask<bool> WaitAsync() => new(this, _core.Version);

    /// <summary>Completes the current wait with <paramref name="value"/>.</summary>
    public void Set(bool value) => _core.SetResult(value);

    bool IValueTaskSource<bool>.GetResult(short token)
    {
        var result = _core.GetResult(token);
        _core.Reset();
        return result;
    }

    ValueTaskSourceStatus IValueTaskSource<bool>.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource<bool>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
