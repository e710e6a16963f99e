using Blockshot.Daemon.SnapshotSets;
using Blockshot.Drivers;
using Blockshot.Snapshots.Storage;

namespace Blockshot.Daemon.Tests;

/// <summary>How each storage kind opens its files: through the page cache, or O_DIRECT behind a RAM tier.</summary>
public sealed class StorageSpecTests : IDisposable
{
    private readonly TempDir _dir = new("blockshot-storage-spec");

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("file:{0}/a.diff", false)]
    [InlineData("dir:{0}", false)]
    [InlineData("multi:{0}/m1.diff,{0}/m2.diff", false)]
    [InlineData("tiered:1M,file:{0}/t.diff", true)]
    [InlineData("tiered:1M,dir:{0}", true)]
    public async Task Stores_use_the_page_cache_unless_a_RAM_tier_is_their_cache(string text, bool direct)
    {
        var spec = StorageSpec.Parse(string.Format(System.Globalization.CultureInfo.InvariantCulture, text, _dir.Path));
        var created = new List<string>();
        await using var store = spec.Open(64 << 10, new DiffStoreOptions { InitialBytes = 1 << 20, GrowStepBytes = 1 << 20 }, created);
        // Behind a tier the store falls back to the page cache on a file system without O_DIRECT (tmpfs).
        Assert.Equal(direct && await TakesDirectIoAsync(), store.Description.Contains(", direct", StringComparison.Ordinal));
        Assert.Contains("raw(", store.Description, StringComparison.Ordinal);
        var slot = await store.AllocateAsync();
        Assert.True(slot >= 0, $"no slot allocated from {store.Description}");
    }

    private async Task<bool> TakesDirectIoAsync()
    {
        var path = _dir.File("probe.raw");
        await File.WriteAllBytesAsync(path, new byte[4096]);
        try
        {
            await RawFileNode.Open(path, new RawFileOptions { Locking = false, Direct = true }).DisposeAsync();
            return true;
        }
        catch (ImageOpenException e) when (e.Reason == ImageOpenError.DirectUnsupported)
        {
            return false;
        }
    }
}
