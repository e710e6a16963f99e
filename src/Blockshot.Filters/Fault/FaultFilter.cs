using System.Diagnostics;
using System.Runtime.CompilerServices;
using Blockshot.Core;
using Blockshot.Filters.Timing;

namespace Blockshot.Filters.Fault;

/// <summary>
/// Injects errors (EIO, ENOSPC) and delays into chosen request kinds, byte ranges and a share of
/// requests, so tests can prove error paths against any stack. Requests the rule does not pick go
/// straight through without allocating.
/// </summary>
public sealed class FaultFilter : FilterNode
{
    private readonly FaultState _state;
    private readonly DelayQueue _delays;

    /// <summary>Creates a fault filter over <paramref name="next"/> that does not own it.</summary>
    public FaultFilter(BlockNode next, FaultState state, DelayQueue? delays = null)
        : base(next, Ownership.None)
    {
        ArgumentNullException.ThrowIfNull(state);
        _state = state;
        _delays = delays ?? DelayQueue.Shared;
    }

    /// <inheritdoc/>
    public override string Kind => "fault";

    /// <summary>The shared rule and counters.</summary>
    public FaultState State => _state;

    /// <inheritdoc/>
    public override ValueTask ReadAsync(long offset, Memory<byte> buffer)
    {
        var action = _state.Decide(FaultOps.Read, offset, buffer.Length);
        return action == FaultAction.Pass ? Next.ReadAsync(offset, buffer) : ReadFaultedAsync(action, offset, buffer);
    }

    /// <inheritdoc/>
    public override ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, IoFlags flags)
    {
        var action = _state.Decide(FaultOps.Write, offset, data.Length);
        return action == FaultAction.Pass ? Next.WriteAsync(offset, data, flags) : WriteFaultedAsync(action, offset, data, flags);
    }

    /// <inheritdoc/>
    public override ValueTask WriteZeroesAsync(long offset, long length, IoFlags flags)
    {
        var action = _state.Decide(FaultOps.Zero, offset, length);
        return action == FaultAction.Pass ? Next.WriteZeroesAsync(offset, length, flags) : ZeroFaultedAsync(action, offset, length, flags);
    }

    /// <inheritdoc/>
    public override ValueTask TrimAsync(long offset, long length, IoFlags flags)
    {
        var action = _state.Decide(FaultOps.Trim, offset, length);
        return action == FaultAction.Pass ? Next.TrimAsync(offset, length, flags) : TrimFaultedAsync(action, offset, length, flags);
    }

    /// <inheritdoc/>
    public override ValueTask FlushAsync()
    {
        var action = _state.Decide(FaultOps.Flush, 0, 0);
        return action == FaultAction.Pass ? Next.FlushAsync() : FlushFaultedAsync(action);
    }

    /// <inheritdoc/>
    public override ValueTask CacheAsync(long offset, long length)
    {
        var action = _state.Decide(FaultOps.Read, offset, length);
        return action == FaultAction.Pass ? Next.CacheAsync(offset, length) : CacheFaultedAsync(action, offset, length);
    }

    /// <inheritdoc/>
    public override string Describe() =>
        $"fault({_state.Rule.Ops.ToString().ToLowerInvariant()}: {_state.Rule.Error.ToString().ToLowerInvariant()}) → {Next.Describe()}";

    // Waits the rule's delay if it has one, then throws if the request is to fail.
    private async ValueTask DisturbAsync(FaultAction action, FaultOps op, long offset, long length)
    {
        if (action is FaultAction.Delay or FaultAction.DelayThenFail)
        {
            await _delays.DelayUntilAsync(Stopwatch.GetTimestamp() + DelayQueue.TicksOf(_state.Rule.Delay)).ConfigureAwait(false);
        }
        if (action is FaultAction.Fail or FaultAction.DelayThenFail)
        {
            throw _state.Failure(op, offset, length);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReadFaultedAsync(FaultAction action, long offset, Memory<byte> buffer)
    {
        await DisturbAsync(action, FaultOps.Read, offset, buffer.Length).ConfigureAwait(false);
        await Next.ReadAsync(offset, buffer).ConfigureAwait(false);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteFaultedAsync(FaultAction action, long offset, ReadOnlyMemory<byte> data, IoFlags flags)
    {
        await DisturbAsync(action, FaultOps.Write, offset, data.Length).ConfigureAwait(false);
        await Next.WriteAsync(offset, data, flags).ConfigureAwait(false);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ZeroFaultedAsync(FaultAction action, long offset, long length, IoFlags flags)
    {
        await DisturbAsync(action, FaultOps.Zero, offset, length).ConfigureAwait(false);
        await Next.WriteZeroesAsync(offset, length, flags).ConfigureAwait(false);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask TrimFaultedAsync(FaultAction action, long offset, long length, IoFlags flags)
    {
        await DisturbAsync(action, FaultOps.Trim, offset, length).ConfigureAwait(false);
        await Next.TrimAsync(offset, length, flags).ConfigureAwait(false);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask FlushFaultedAsync(FaultAction action)
    {
        await DisturbAsync(action, FaultOps.Flush, 0, 0).ConfigureAwait(false);
        await Next.FlushAsync().ConfigureAwait(false);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask CacheFaultedAsync(FaultAction action, long offset, long length)
    {
        await DisturbAsync(action, FaultOps.Read, offset, length).ConfigureAwait(false);
        await Next.CacheAsync(offset, length).ConfigureAwait(false);
    }
}
