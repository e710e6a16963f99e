using Blockshot.Core;
using Blockshot.Core.Buffers;
using Blockshot.Core.Extents;

namespace Blockshot.Drivers.Tests.Raw;

public sealed class RawFileBlockDeviceTests : IDisposable
{
    private const int Size = 8 << 20;

    private readonly TempDir _dir = new("blockshot-raw-dev");
    private readonly BufferPool _pool = new();

    public void Dispose()
    {
        Assert.Equal(0, _pool.Outstanding);
        _pool.Dispose();
        _dir.Dispose();
    }

    [RequiresRootFact("losetup")]
    public async Task Loop_device_round_trip_buffered() => await WithLoopDeviceAsync(direct: false);

    [RequiresRootFact("losetup")]
    public async Task Loop_device_round_trip_direct() => await WithLoopDeviceAsync(direct: true);

    private async Task WithLoopDeviceAsync(bool direct)
    {
        var backing = RawFiles.CreateSparse(_dir.File("backing.raw"), Size);
        var device = (await ToolRun.CheckAsync("losetup", "-f", "--show", backing)).Trim();
        Assert.StartsWith("/dev/loop", device);
        var model = new ReferenceModel(Size);
        try
        {
            await using (var node = RawFileNode.Open(device, RawFiles.Options(_pool, direct)))
            {
                Assert.True(node.IsBlockDevice);
                Assert.Equal(Size, node.Size);
                Assert.Equal(512, node.LogicalBlockSize);
                var caps = node.Capabilities;
                Assert.True(caps.Has(NodeFeatures.Write | NodeFeatures.Flush | NodeFeatures.Fua | NodeFeatures.WriteZeroes));
                Assert.False(caps.Has(NodeFeatures.Resize));
                Assert.False(caps.Has(NodeFeatures.Extents));
                Assert.Contains("device", node.Describe());
                var rotational = File.ReadAllText($"/sys/block/{Path.GetFileName(device)}/queue/rotational").Trim() == "1";
                Assert.Equal(rotational, caps.Has(NodeFeatures.Rotational));

                var data = Patterns.Make(Size, 0, 11);
                await node.WriteAsync(0, data.AsMemory(0, 4 << 20), IoFlags.None);
                await node.WriteAsync(4 << 20, data.AsMemory(4 << 20), IoFlags.Fua);
                model.Write(0, data);
                await node.WriteAsync(1001, Patterns.Make(3000, 1001, 12), IoFlags.None);
                model.Write(1001, Patterns.Make(3000, 1001, 12));

                await node.WriteZeroesAsync(100, 70000, IoFlags.None);            // unaligned head and tail
                model.Zero(100, 70000);
                await node.WriteZeroesAsync(1 << 20, 1 << 20, IoFlags.MayTrim);
                model.Zero(1 << 20, 1 << 20);
                await node.TrimAsync((3 << 20) + 7, 512 * 100, IoFlags.None);      // content afterwards unspecified
                model.Trim((3 << 20) + 7, 512 * 100, zeroes: false);
                await node.FlushAsync();

                var back = new byte[Size];
                await node.ReadAsync(0, back);
                model.Verify(0, back, "device read-back");

                var extents = new ExtentList();
                extents.Reset(0, Size);
                await node.GetExtentsAsync(0, Size, extents);
                Assert.Equal(new Extent(0, Size, AllocationFlags.Data), Assert.Single(extents.Items.ToArray()));

                var resize = await Assert.ThrowsAsync<BlockException>(() => node.ResizeAsync(Size * 2).AsTask());
                Assert.Equal(BlockError.NotSupported, resize.Error);
            }

            // Everything went through the loop device to the file behind it.
            model.Verify(0, await File.ReadAllBytesAsync(backing), "backing file");
        }
        finally
        {
            await ToolRun.CheckAsync("losetup", "-d", device);
        }
    }
}
