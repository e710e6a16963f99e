namespace Blockshot.Qcow2;

public sealed partial class Qcow2Node
{
    /// <summary>Writes every cached metadata change in crash-safe order and syncs the files.</summary>
    public override async ValueTask FlushAsync()
    {
        if (_readOnly || _closed)
        {
            return;
        }
        await _meta.WaitAsync().ConfigureAwait(false);
        try
        {
            await FlushMetadataAsync().ConfigureAwait(false);
        }
        finally
        {
            _meta.Release();
        }
    }

    /// <summary>Flushes both caches (each honouring its dependencies), syncs, then releases quarantined clusters. Under <see cref="_meta"/>.</summary>
    private async ValueTask FlushMetadataAsync()
    {
        await _refcountCache.WriteBackAsync().ConfigureAwait(false);
        await _l2Cache.WriteBackAsync().ConfigureAwait(false);
        await _refcountCache.WriteBackAsync().ConfigureAwait(false);
        await SyncFilesAsync().ConfigureAwait(false);
        _refcounts.ClearQuarantine();
    }
}
