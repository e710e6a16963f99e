namespace Blockshot.Core;

/// <summary>
/// Locks byte ranges. Exclusive holders exclude every overlapping holder; shared holders exclude only
/// overlapping exclusive ones. Uncontended acquisition allocates nothing (entries are recycled);
/// waiting allocates one completion source. Waiters are woken when an overlapping holder leaves and
/// then try again, so a range is never granted while an overlapping incompatible holder remains.
/// </summary>
public sealed class RangeLock
{
    private readonly object _sync = new();

    // Guarded by _sync.
    private readonly List<Holder> _held = [];
    private readonly List<Waiter> _waiters = [];
    private readonly Stack<Holder> _free = new();

    /// <summary>Number of ranges held right now.</summary>
    public int HeldCount
    {
        get
        {
            lock (_sync)
            {
                return _held.Count;
            }
        }
    }

    /// <summary>Acquires <c>[offset, offset + length)</c>; dispose the result to release it.</summary>
    public ValueTask<RangeLockHandle> AcquireAsync(long offset, long length, bool shared = false)
    {
        lock (_sync)
        {
            if (!Conflicts(offset, length, shared))
            {
                return new ValueTask<RangeLockHandle>(Grant(offset, length, shared));
            }
        }
        return AcquireSlowAsync(offset, length, shared);
    }

    /// <summary>Acquires the range if no incompatible holder overlaps it.</summary>
    public bool TryAcquire(long offset, long length, bool shared, out RangeLockHandle handle)
    {
        lock (_sync)
        {
            if (!Conflicts(offset, length, shared))
            {
                handle = Grant(offset, length, shared);
                return true;
            }
        }
        handle = default;
        return false;
    }

    private async ValueTask<RangeLockHandle> AcquireSlowAsync(long offset, long length, bool shared)
    {
        while (true)
        {
            Waiter waiter;
            lock (_sync)
            {
                if (!Conflicts(offset, length, shared))
                {
                    return Grant(offset, length, shared);
                }
                waiter = new Waiter(offset, length);
                _waiters.Add(waiter);
            }
            await waiter.Signal.Task.ConfigureAwait(false);
        }
    }

    internal void Release(Holder holder, int generation)
    {
        List<Waiter>? wake = null;
        lock (_sync)
        {
            if (holder.Generation != generation)
            {
                throw new InvalidOperationException("range lock handle released twice");
            }
            holder.Generation++;
            _held.Remove(holder);
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                var w = _waiters[i];
                if (w.Offset < holder.Offset + holder.Length && holder.Offset < w.Offset + w.Length)
                {
                    (wake ??= []).Add(w);
                    _waiters.RemoveAt(i);
                }
            }
            _free.Push(holder);
        }
        if (wake is not null)
        {
            foreach (var w in wake)
            {
                w.Signal.TrySetResult();
            }
        }
    }

    private bool Conflicts(long offset, long length, bool shared)
    {
        var end = offset + length;
        foreach (var h in _held)
        {
            if (h.Offset < end && offset < h.Offset + h.Length && !(shared && h.Shared))
            {
                return true;
            }
        }
        return false;
    }

    private RangeLockHandle Grant(long offset, long length, bool shared)
    {
        var holder = _free.Count > 0 ? _free.Pop() : new Holder();
        holder.Offset = offset;
        holder.Length = Math.Max(length, 1);
        holder.Shared = shared;
        _held.Add(holder);
        return new RangeLockHandle(this, holder, holder.Generation);
    }

    internal sealed class Holder
    {
        public long Offset;
        public long Length;
        public bool Shared;
        public int Generation;
    }

    private sealed class Waiter(long offset, long length)
    {
        public long Offset { get; } = offset;

        public long Length { get; } = Math.Max(length, 1);

        public TaskCompletionSource Signal { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}

/// <summary>A held range; disposing it releases the range exactly once.</summary>
public readonly struct RangeLockHandle : IDisposable
{
    private readonly RangeLock? _owner;
    private readonly RangeLock.Holder? _holder;
    private readonly int _generation;

    internal RangeLockHandle(RangeLock owner, RangeLock.Holder holder, int generation)
    {
        _owner = owner;
        _holder = holder;
        _generation = generation;
    }

    /// <summary>Releases the range.</summary>
    public void Dispose()
    {
        if (_owner is not null && _holder is not null)
        {
            _owner.Release(_holder, _generation);
        }
    }
}
