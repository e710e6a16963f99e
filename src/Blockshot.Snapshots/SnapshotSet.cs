namespace Blockshot.Snapshots;

/// <summary>
/// Takes snapshots of several devices at one instant: the pre-freeze hook (e.g. <c>fsfreeze -f</c>),
/// every slot suspended (in-flight requests drained, new ones held), CBW armed on all, everything
/// resumed, the thaw hook. A hook failure or timeout, or a device that cannot be suspended, aborts the
/// take: every snapshot added is removed, every slot resumed, and the thaw hook runs if the freeze did.
/// </summary>
public static class SnapshotSet
{
    /// <summary>Takes the set; returns the snapshots in request order.</summary>
    public static async Task<IReadOnlyList<Snapshot>> TakeAsync(
        IReadOnlyList<SnapshotTakeRequest> requests,
        SnapshotHooks? hooks = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(requests);
        if (requests.Count == 0)
        {
            throw new ArgumentException("a snapshot set needs at least one device", nameof(requests));
        }
        if (requests.Select(r => r.Slot).Distinct().Count() != requests.Count)
        {
            throw new ArgumentException("a device can appear only once in a snapshot set", nameof(requests));
        }
        hooks ??= new SnapshotHooks();
        var frozen = false;
        var suspended = new List<Core.Slot>();
        var added = new List<(SnapshotTakeRequest Request, CbwFilter Filter, Snapshot Snapshot, Core.BlockNode Previous, bool Inserted)>();
        try
        {
            if (hooks.Freeze is { } freeze)
            {
                await RunHookAsync("freeze", freeze, hooks.Timeout, cancellationToken).ConfigureAwait(false);
                frozen = true;
            }
            foreach (var request in requests)
            {
                await request.Slot.SuspendAsync(hooks.SuspendTimeout, cancellationToken).ConfigureAwait(false);
                suspended.Add(request.Slot);
            }
            foreach (var request in requests)
            {
                var previous = request.Slot.Current;
                var filter = request.Filter(previous);
                var inserted = !ReferenceEquals(previous, filter) && !Contains(previous, filter);
                var snapshot = await filter.AddSnapshotAsync(request.Name, request.Options).ConfigureAwait(false);
                added.Add((request, filter, snapshot, previous, inserted));
                if (inserted)
                {
                    if (request.Insert is { } insert)
                    {
                        insert(filter);
                    }
                    else
                    {
                        request.Slot.Replace(filter);
                    }
                }
            }
            if (hooks.WhileSuspended is { } atInstant)
            {
                await RunHookAsync("at-take", _ => atInstant().AsTask(), hooks.Timeout, cancellationToken).ConfigureAwait(false);
            }
            return [.. added.Select(a => a.Snapshot)];
        }
        catch
        {
            // Undo: the set is all or nothing. Slots are still suspended here, so no write has seen CBW.
            foreach (var (request, filter, snapshot, previous, inserted) in added)
            {
                await filter.RemoveSnapshotAsync(snapshot).ConfigureAwait(false);
                if (!inserted || filter.Snapshots.Count != 0)
                {
                    continue;
                }
                if (request.Remove is { } remove)
                {
                    remove(filter);
                }
                else if (ReferenceEquals(request.Slot.Current, filter))
                {
                    request.Slot.Replace(previous);
                }
            }
            throw;
        }
        finally
        {
            foreach (var slot in suspended)
            {
                slot.Resume();
            }
            if (frozen && hooks.Thaw is { } thaw)
            {
                await RunHookAsync("thaw", thaw, hooks.Timeout, CancellationToken.None).ConfigureAwait(false);
            }
        }
    }

    private static bool Contains(Core.BlockNode stack, CbwFilter filter)
    {
        for (var node = stack; node is Core.FilterNode f; node = f.Next)
        {
            if (ReferenceEquals(f, filter))
            {
                return true;
            }
        }
        return false;
    }

    private static async Task RunHookAsync(string name, Func<CancellationToken, Task> hook, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        try
        {
            await hook(cts.Token).WaitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"the {name} hook did not finish within {timeout.TotalSeconds:0.#} s", e);
        }
    }
}
