using System.Runtime.CompilerServices;
using Blockshot.Core.Extents;

namespace Blockshot.Core;

/// <summary>
/// The attach point an export holds, and the graph entry where requests are validated. The stack
/// beneath can be swapped while clients stay connected: <see cref="SuspendAsync"/> drains requests in
/// flight and holds new ones, <see cref="Replace"/> swaps the stack, <see cref="Resume"/> releases
/// the held requests onto the new stack.
/// </summary>
public sealed class Slot : BlockNode
{
    // Written only while suspended and drained (no request holds the old value).
    private BlockNode _node;

    // Requests between TryEnter and Exit. Paired with _held as in Dekker's algorithm: a request
    // increments, then reads _held; a suspender writes _held, then reads the count.
    private int _inflight;

    // Non-null while suspended: new requests wait on it. Guarded by _control for writes.
    private volatile TaskCompletionSource? _held;

    // Set while a suspender waits for the count to reach zero.
    private volatile TaskCompletionSource? _drained;

    // Held from the start of a suspension until Resume: one suspension at a time.
    private readonly SemaphoreSlim _control = new(1, 1);

    /// <summary>Creates a slot over <paramref name="node"/>.</summary>
    public Slot(BlockNode node, bool readOnly = false, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(node);
        _node = node;
        ReadOnly = readOnly;
        Name = name ?? node.Kind;
    }

    /// <summary>A name for messages (usually the device name).</summary>
    public string Name { get; }

    /// <summary>True when the slot refuses writes whatever the stack can do.</summary>
    public bool ReadOnly { get; }

    /// <summary>The stack currently attached.</summary>
    public BlockNode Current => Volatile.Read(ref _node);

    /// <summary>True while suspended.</summary>
    public bool IsSuspended => _held is not null;

    /// <summary>Requests currently in flight in the stack.</summary>
    public int InFlight => Volatile.Read(ref _inflight);

    /// <inheritdoc/>
    public override string Kind => "slot";

    /// <inheritdoc/>
    public override long Size => Current.Size;

    /// <inheritdoc/>
    public override NodeCapabilities Capabilities =>
        ReadOnly ? Current.Capabilities.Without(NodeFeatures.Write | NodeFeatures.Trim | NodeFeatures.WriteZeroes | NodeFeatures.FastZero | NodeFeatures.Fua | NodeFeatures.Resize)
                 : Current.Capabilities;

    /// <inheritdoc/>
    public override IReadOnlyList<BlockStatusContext> StatusContexts => Current.StatusContexts;

    /// <inheritdoc/>
    protected override NodeCapabilities ComputeCapabilities() => Current.Capabilities;

    /// <inheritdoc/>
    public override string Describe() => Current.Describe();

    /// <inheritdoc/>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public override async ValueTask ReadAsync(long offset, Memory<byte> buffer)
    {
        var node = TryEnter() ?? await EnterSlowAsync().ConfigureAwait(false);
        try
        {
            RequestValidator.CheckRead(offset, buffer.Length, node.Size, IoFlags.None);
            CheckMax(node, buffer.Length);
            if (buffer.Length > 0)
            {
                await node.ReadAsync(offset, buffer).ConfigureAwait(false);
            }
        }
        finally
        {
            Exit();
        }
    }

    /// <inheritdoc/>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public override async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, IoFlags flags)
    {
        var node = TryEnter() ?? await EnterSlowAsync().ConfigureAwait(false);
        try
        {
            RequestValidator.CheckWrite(node.Capabilities, ReadOnly, offset, data.Length, node.Size, flags);
            CheckMax(node, data.Length);
            if (data.Length > 0)
            {
                await node.WriteAsync(offset, data, flags).ConfigureAwait(false);
            }
        }
        finally
        {
            Exit();
        }
    }

    /// <inheritdoc/>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public override async ValueTask WriteZeroesAsync(long offset, long length, IoFlags flags)
    {
        var node = TryEnter() ?? await EnterSlowAsync().ConfigureAwait(false);
        try
        {
            RequestValidator.CheckWriteZeroes(node.Capabilities, ReadOnly, offset, length, node.Size, flags);
            if (length > 0)
            {
                await node.WriteZeroesAsync(offset, length, flags).ConfigureAwait(false);
            }
        }
        finally
        {
            Exit();
        }
    }

    /// <inheritdoc/>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public override async ValueTask TrimAsync(long offset, long length, IoFlags flags)
    {
        var node = TryEnter() ?? await EnterSlowAsync().ConfigureAwait(false);
        try
        {
            RequestValidator.CheckTrim(node.Capabilities, ReadOnly, offset, length, node.Size, flags);
            if (length > 0)
            {
                await node.TrimAsync(offset, length, flags).ConfigureAwait(false);
            }
        }
        finally
        {
            Exit();
        }
    }

    /// <inheritdoc/>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public override async ValueTask FlushAsync()
    {
        var node = TryEnter() ?? await EnterSlowAsync().ConfigureAwait(false);
        try
        {
            await node.FlushAsync().ConfigureAwait(false);
        }
        finally
        {
            Exit();
        }
    }

    /// <inheritdoc/>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public override async ValueTask CacheAsync(long offset, long length)
    {
        var node = TryEnter() ?? await EnterSlowAsync().ConfigureAwait(false);
        try
        {
            RequestValidator.CheckRead(offset, length, node.Size, IoFlags.None);
            await node.CacheAsync(offset, length).ConfigureAwait(false);
        }
        finally
        {
            Exit();
        }
    }

    /// <inheritdoc/>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public override async ValueTask GetExtentsAsync(long offset, long length, ExtentList extents)
    {
        var node = TryEnter() ?? await EnterSlowAsync().ConfigureAwait(false);
        try
        {
            RequestValidator.CheckRead(offset, length, node.Size, IoFlags.None);
            if (length > 0)
            {
                await node.GetExtentsAsync(offset, length, extents).ConfigureAwait(false);
            }
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>
    /// Maps a read to a cached file range when the current stack can (see
    /// <see cref="BlockNode.TryMapCachedRead"/>). Never waits: while the slot is suspended, or for a
    /// request that would fail validation, it answers false and the caller's usual read reports the
    /// outcome.
    /// </summary>
    public override bool TryMapCachedRead(long offset, int length, out CachedFileRange range)
    {
        range = default;
        var node = TryEnter();
        if (node is null)
        {
            return false;
        }
        try
        {
            return length > 0 && length <= node.Capabilities.MaxBlockSize && RequestValidator.InRange(offset, length, node.Size)
                && node.TryMapCachedRead(offset, length, out range);
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>Queries a named status context of the current stack, validated like a read.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask QueryStatusAsync(string context, long offset, long length, ExtentList extents)
    {
        var node = TryEnter() ?? await EnterSlowAsync().ConfigureAwait(false);
        try
        {
            RequestValidator.CheckRead(offset, length, node.Size, IoFlags.None);
            var source = node.FindStatusContext(context)
                ?? throw new BlockException(BlockError.Invalid, $"status context {context} is not offered by {Name}");
            if (length > 0)
            {
                await source.QueryAsync(offset, length, extents).ConfigureAwait(false);
            }
        }
        finally
        {
            Exit();
        }
    }

    /// <inheritdoc/>
    public override async ValueTask ResizeAsync(long newSize)
    {
        if (ReadOnly)
        {
            BlockThrow.ReadOnly(Name);
        }
        var node = TryEnter() ?? await EnterSlowAsync().ConfigureAwait(false);
        try
        {
            await node.ResizeAsync(newSize).ConfigureAwait(false);
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>
    /// Drains requests in flight and holds new ones. Fails with <see cref="TimeoutException"/> (and
    /// leaves the slot running) if the drain takes longer than <paramref name="timeout"/>.
    /// </summary>
    public async Task SuspendAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        await _control.WaitAsync(cancellationToken).ConfigureAwait(false);
        var drained = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _drained = drained;
        _held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref _inflight) == 0)
        {
            drained.TrySetResult();
        }
        try
        {
            await drained.Task.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            Release();
            if (e is TimeoutException)
            {
                throw new TimeoutException($"{Name}: {InFlight} request(s) still in flight after {timeout.TotalMilliseconds:0} ms; resumed", e);
            }
            throw;
        }
    }

    /// <summary>Attaches <paramref name="node"/>; only while suspended. Returns the previous stack.</summary>
    public BlockNode Replace(BlockNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        if (!IsSuspended)
        {
            throw new InvalidOperationException($"{Name}: the slot must be suspended to replace its stack");
        }
        var old = _node;
        Volatile.Write(ref _node, node);
        return old;
    }

    /// <summary>Releases the held requests onto the current stack.</summary>
    public void Resume()
    {
        if (!IsSuspended)
        {
            throw new InvalidOperationException($"{Name}: the slot is not suspended");
        }
        Release();
    }

    /// <summary>Suspends, swaps in the stack <paramref name="build"/> makes from the current one, resumes.</summary>
    public async Task<BlockNode> SwapAsync(Func<BlockNode, BlockNode> build, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(build);
        await SuspendAsync(timeout).ConfigureAwait(false);
        try
        {
            return Replace(build(Current));
        }
        finally
        {
            Resume();
        }
    }

    /// <inheritdoc/>
    protected override ValueTask DisposeCoreAsync()
    {
        _control.Dispose();
        return default;
    }

    private void Release()
    {
        var held = _held;
        _held = null;
        _drained = null;
        held?.TrySetResult();
        _control.Release();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private BlockNode? TryEnter()
    {
        Interlocked.Increment(ref _inflight);
        if (_held is null)
        {
            return Volatile.Read(ref _node);
        }
        Exit();
        return null;
    }

    private async ValueTask<BlockNode> EnterSlowAsync()
    {
        while (true)
        {
            var held = _held;
            if (held is not null)
            {
                await held.Task.ConfigureAwait(false);
            }
            var node = TryEnter();
            if (node is not null)
            {
                return node;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Exit()
    {
        if (Interlocked.Decrement(ref _inflight) == 0 && _held is not null)
        {
            _drained?.TrySetResult();
        }
    }

    private static void CheckMax(BlockNode node, int length)
    {
        if (length > node.Capabilities.MaxBlockSize)
        {
            BlockThrow.Error(BlockError.Invalid, $"request of {length} bytes exceeds the {node.Capabilities.MaxBlockSize}-byte maximum");
        }
    }
}
