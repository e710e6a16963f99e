using Blockshot.Core;
using Blockshot.Core.Buffers;

namespace Blockshot.Fuse.Tests;

/// <summary>
/// A node exported in a scratch directory for one test. Disposing it stops the export (detaching the
/// loop device and unmounting) and then checks that nothing was left behind: no mount, no loop device,
/// no buffer still rented.
/// </summary>
internal sealed class ExportScope : IAsyncDisposable
{
    private readonly TempDir _dir;

    private ExportScope(TempDir dir, FuseExport export, BufferPool pool)
    {
        _dir = dir;
        Export = export;
        Pool = pool;
    }

    public FuseExport Export { get; }

    public BufferPool Pool { get; }

    public string File => Export.Mountpoint;

    public string Loop => Export.LoopDevicePath ?? throw new InvalidOperationException("no loop device");

    public string Scratch(string name) => _dir.File(name);

    public static async Task<ExportScope> StartAsync(BlockNode node, FuseExportOptions? options = null)
    {
        var dir = new TempDir("blockshot-fuse");
        var pool = new BufferPool();
        try
        {
            var export = await FuseExport.StartAsync(node, dir.File("disk.img"), (options ?? new FuseExportOptions()) with { BufferPool = pool });
            return new ExportScope(dir, export, pool);
        }
        catch
        {
            pool.Dispose();
            dir.Dispose();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        var loop = Export.LoopDevicePath;
        try
        {
            await Export.DisposeAsync();
            Assert.False(FuseMount.IsFuseMounted(Export.Mountpoint), "the export is still mounted");
            if (loop is not null)
            {
                Assert.DoesNotContain(loop, LoopDevice.FindByBackingFile(Export.Mountpoint));
            }
            Assert.Equal(0, Pool.Outstanding);
        }
        finally
        {
            Pool.Dispose();
            _dir.Dispose();
        }
    }
}
