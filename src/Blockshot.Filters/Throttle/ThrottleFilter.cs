using System.Runtime.CompilerServices;
using Blockshot.Core;
using Blockshot.Filters.Timing;

namespace Blockshot.Filters.Throttle;

/// <summary>
/// Limits the bytes and requests per second that pass to the node below. A request within budget
/// goes straight through; one over budget waits on the shared <see cref="DelayQueue"/> until its
/// reserved start time. Nothing is allocated per request (the slow path uses pooled builders and
/// pooled waits). Flushes, cache hints and extent queries are not limited.
/// </summary>
public sealed class ThrottleFilter : FilterNode
{
    private readonly ThrottleState _state;
    private readonly DelayQueue _delays;

    /// <summary>Creates a throttle over <paramref name="next"/> that does not own it.</summary>
    public ThrottleFilter(BlockNode next, ThrottleState state, DelayQueue? delays = null)
        : base(next, Ownership.None)
    {
        ArgumentNullException.ThrowIfNull(state);
        _state = state;
        _delays = delays ?? DelayQueue.Shared;
    }

    /// <inheritdoc/>
    public override string Kind => "throttle";

    /// <summary>The shared pacing state.</summary>
    public ThrottleState State => _state;

    /// <inheritdoc/>
    public override ValueTask ReadAsync(long offset, Memory<byte> buffer)
    {
        var due = _state.Reserve(buffer.Length, out var now);
        return due <= now ? Next.ReadAsync(offset, buffer) : ReadLaterAsync(due, offset, buffer);
    }

    /// <inheritdoc/>
    public override ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, IoFlags flags)
    {
        var due = _state.Reserve(data.Length, out var now);
        return due <= now ? Next.WriteAsync(offset, data, flags) : WriteLaterAsync(due, offset, data, flags);
    }

    /// <inheritdoc/>
    public override ValueTask WriteZeroesAsync(long offset, long length, IoFlags flags)
    {
        var due = _state.Reserve(0, out var now);
        return due <= now ? Next.WriteZeroesAsync(offset, length, flags) : ZeroLaterAsync(due, offset, length, flags);
    }

    /// <inheritdoc/>
    public override ValueTask TrimAsync(long offset, long length, IoFlags flags)
    {
        var due = _state.Reserve(0, out var now);
        return due <= now ? Next.TrimAsync(offset, length, flags) : TrimLaterAsync(due, offset, length, flags);
    }

    /// <inheritdoc/>
    public override string Describe() =>
        $"throttle(bps={_state.Limits.BytesPerSecond}, iops={_state.Limits.IopsPerSecond}) → {Next.Describe()}";

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReadLaterAsync(long due, long offset, Memory<byte> buffer)
    {
        await _delays.DelayUntilAsync(due).ConfigureAwait(false);
        await Next.ReadAsync(offset, buffer).ConfigureAwait(false);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteLaterAsync(long due, long offset, ReadOnlyMemory<byte> data, IoFlags flags)
    {
        await _delays.DelayUntilAsync(due).ConfigureAwait(false);
        await Next.WriteAsync(offset, data, flags).ConfigureAwait(false);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ZeroLaterAsync(long due, long offset, long length, IoFlags flags)
    {
        await _delays.DelayUntilAsync(due).ConfigureAwait(false);
        await Next.WriteZeroesAsync(offset, length, flags).ConfigureAwait(false);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask TrimLaterAsync(long due, long offset, long length, IoFlags flags)
    {
        await _delays.DelayUntilAsync(due).ConfigureAwait(false);
        await Next.TrimAsync(offset, length, flags).ConfigureAwait(false);
    }
}
