using Blockshot.Drivers;
using Xunit.Abstractions;

namespace Blockshot.Fuse.Tests;

public class SmokeTests(ITestOutputHelper output)
{
    [RequiresRootFact("losetup")]
    public async Task Smoke()
    {
        using var dir = new TempDir("fuse-smoke");
        var node = new MemoryNode(64 << 20);
        await using var export = await FuseExport.StartAsync(node, dir.File("disk.img"), new FuseExportOptions { Loop = true });
        output.WriteLine($"proto {export.ProtocolVersion} kernel {export.KernelProtocolVersion} maxwrite {export.MaxWrite}");
        output.WriteLine($"loop {export.LoopDevicePath} dio={export.LoopDirectIo} refusal={export.LoopDirectIoRefusal}");
        using (var h = File.OpenHandle(export.Mountpoint, FileMode.Open, FileAccess.ReadWrite))
        {
            var data = Patterns.Make(100000, 12345, 1);
            RandomAccess.Write(h, data, 12345);
            var back = new byte[100000];
            Assert.Equal(100000, RandomAccess.Read(h, back, 12345));
            Assert.Equal(data, back);
            Assert.Equal(64 << 20, RandomAccess.GetLength(h));
        }
        output.WriteLine(export.Counters.ToString());
    }
}
