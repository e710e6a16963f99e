using Blockshot.Core;

namespace Blockshot.Drivers.Tests.Raw;

/// <summary>
/// A fact about files whose file system refuses buffered RWF_NOWAIT writes (ext4 does), found by trying one
/// under the temporary directory; skipped, with the reason, where the file system takes them.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class RequiresNowaitWriteRefusalFactAttribute : FactAttribute
{
    private static readonly Lazy<string?> Reason = new(Probe);

    public RequiresNowaitWriteRefusalFactAttribute()
    {
        Skip = Reason.Value;
    }

    private static string? Probe()
    {
        using var dir = new TempDir("blockshot-nowait-probe");
        var path = RawFiles.CreateSparse(dir.File("probe.raw"), 1 << 20);
        var node = RawFileNode.Open(path, new RawFileOptions { Locking = false });
        try
        {
            // From a thread-pool thread, so the write tries RWF_NOWAIT first.
            Task.Run(async () => await node.WriteAsync(0, new byte[4096], IoFlags.None)).GetAwaiter().GetResult();
            return node.RefusesNowaitWrites
                ? null
                : $"needs a file system that refuses buffered RWF_NOWAIT writes (ext4 does); the one under {Path.GetTempPath()} takes them, so no write there goes to another thread for lack of them";
        }
        finally
        {
            node.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }
}
