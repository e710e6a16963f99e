using System.Text.Json.Nodes;
using Blockshot.Daemon.Events;
using Blockshot.Daemon.Protocol;
using Blockshot.Daemon.SnapshotSets;
using Blockshot.Snapshots;

namespace Blockshot.Daemon;

/// <summary>Snapshot sets: list, describe, destroy.</summary>
internal sealed partial class Registry
{
    public async Task<IReadOnlyList<SnapshotInfo>> ListSnapshotsAsync()
    {
        List<SnapshotSetRecord> sets;
        await _snapshotLock.WaitAsync().ConfigureAwait(false);
        try
        {
            sets = [.. _sets.Values.OrderBy(s => s.Created).ThenBy(s => s.Name, StringComparer.Ordinal)];
        }
        finally
        {
            _snapshotLock.Release();
        }
        var result = new List<SnapshotInfo>();
        foreach (var set in sets)
        {
            result.Add(await SnapshotInfoOfAsync(set).ConfigureAwait(false));
        }
        return result;
    }

    public async Task<SnapshotInfo> GetSnapshotAsync(string name)
    {
        SnapshotSetRecord set;
        await _snapshotLock.WaitAsync().ConfigureAwait(false);
        try
        {
            set = FindSetLocked(name);
        }
        finally
        {
            _snapshotLock.Release();
        }
        return await SnapshotInfoOfAsync(set).ConfigureAwait(false);
    }

    /// <summary>
    /// Destroys a set's snapshots (or one device's, with <paramref name="deviceName"/>). Refused while
    /// exported unless <paramref name="force"/>, which removes the exports first (clients are
    /// disconnected once their requests in flight finish).
    /// </summary>
    public async Task DestroySnapshotAsync(string name, string? deviceName, bool force)
    {
        List<string> destroyed = [];
        await _snapshotLock.WaitAsync().ConfigureAwait(false);
        try
        {
            var set = FindSetLocked(name);
            var members = deviceName is null ? [.. set.Members] : set.Members.Where(m => m.Device.Name == deviceName).ToList();
            if (members.Count == 0)
            {
                throw new ControlException(ControlErrorCodes.NotFound, $"snapshot {name} has no device named {deviceName}");
            }
            var exports = await ExportsOfAsync(members).ConfigureAwait(false);
            if (exports.Count > 0 && !force)
            {
                throw new ControlException(ControlErrorCodes.InUse,
                    $"snapshot {name} is exported as {string.Join(", ", exports)}; remove the exports first, or destroy with force");
            }
            foreach (var export in exports)
            {
                await RemoveExportAsync(export).ConfigureAwait(false);
            }
            foreach (var member in members)
            {
                await member.Device.DestroySnapshotAsync(member.Snapshot, DefaultTimeout).ConfigureAwait(false);
                set.Members.Remove(member);
                destroyed.Add(member.Device.Name);
                if (State?.RemoveTake(member.Device.Name, name) is { } take)
                {
                    File.Delete(take.Map);
                }
                if (member.Device.Cbw is null)
                {
                    State?.Remove(member.Device.Name);
                }
            }
            if (set.Members.Count == 0)
            {
                _sets.Remove(name);
            }
        }
        finally
        {
            _snapshotLock.Release();
        }
        _events.Publish(EventNames.SnapshotDestroyed, new JsonObject { ["name"] = name, ["devices"] = new JsonArray([.. destroyed.Select(d => JsonValue.Create(d))]) });
    }

    // Caller holds _snapshotLock.
    private SnapshotSetRecord FindSetLocked(string name) =>
        _sets.TryGetValue(name, out var set) ? set : throw new ControlException(ControlErrorCodes.NotFound, $"no snapshot named {name}");

    private async Task<List<string>> ExportsOfAsync(IReadOnlyCollection<SnapshotMember> members)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            return [.. _snapshotExports.Where(e => members.Contains(e.Value)).Select(e => e.Key).Order(StringComparer.Ordinal)];
        }
        finally
        {
            _lock.Release();
        }
    }

    private async Task<SnapshotInfo> SnapshotInfoOfAsync(SnapshotSetRecord set)
    {
        var members = new List<SnapshotMemberInfo>();
        foreach (var m in set.Members.ToList())
        {
            var s = m.Snapshot;
            var cbw = m.Device.Cbw;
            members.Add(new SnapshotMemberInfo
            {
                Device = m.Device.Name,
                Number = s.Number,
                State = s.State.ToString().ToLowerInvariant(),
                Failure = s.FailureReason,
                FailedAt = s.FailedAt,
                Size = s.Image.Size,
                ChunkSize = cbw?.Filter.ChunkSize ?? 0,
                Storage = cbw?.Storage.Text ?? "",
                StorageUsed = cbw?.Store.UsedBytes ?? 0,
                StorageLimit = cbw?.Store.LimitBytes ?? 0,
                CopiedChunks = s.CopiedChunks,
                TableBytes = s.TableBytes,
                OnOverflow = PolicyText(s.Options.OnOverflow),
                Writable = s.Options.Writable,
                Exports = await ExportsOfAsync([m]).ConfigureAwait(false),
                CbtGeneration = m.Bitmap?.Generation.ToString(),
                CbtSince = m.Bitmap?.Since,
                CbtPeriod = m.Bitmap?.Period,
                CbtBitmap = m.Bitmap?.Changes.Kind.ToString().ToLowerInvariant(),
            });
        }
        return new SnapshotInfo { Name = set.Name, Created = set.Created, Persistent = set.Persistent, Devices = members };
    }

    /// <summary>A policy as the protocol spells it.</summary>
    public static string PolicyText(OverflowPolicy policy) => policy switch
    {
        OverflowPolicy.FailWrite => "fail-write",
        OverflowPolicy.Wait => "wait",
        _ => "break-snapshot",
    };
}
