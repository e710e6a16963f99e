using Blockshot.Core;
using Blockshot.Qcow2.Format;

namespace Blockshot.Qcow2.Tests;

public class HeaderRewriteTests
{
    [RequiresToolsFact("qemu-img")]
    public async Task Unknown_header_extensions_and_fields_survive_our_header_rewrites()
    {
        using var dir = new TempDir();
        var path = dir.File("img.qcow2");
        Qemu.Img("create", "-f", "qcow2", path, "4M");
        // Add an unknown extension and unknown header bytes (header_length 120).
        var bytes = File.ReadAllBytes(path);
        var hc = Qcow2HeaderCluster.Parse(bytes.AsSpan(0, 65536));
        var unknown = new HeaderExtension(0x5eed1e55, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        hc.UnknownExtensions.Add(unknown);
        hc.Header.HeaderLength = 120;
        hc.Header.ExtraFields = [.. new byte[7], 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0];
        hc.WriteTo(bytes.AsSpan(0, 65536));
        File.WriteAllBytes(path, bytes);
        Assert.Equal(0, Qemu.Check(path).ExitCode);

        await Qcow2Image.AddBitmapAsync(path, "b");
        await Qcow2Image.RebaseUnsafeAsync(path, "nowhere.qcow2", "qcow2");
        await Qcow2Image.RebaseUnsafeAsync(path, null, null);

        var after = Qcow2HeaderCluster.Parse(File.ReadAllBytes(path).AsSpan(0, 65536));
        Assert.Equal(unknown, Assert.Single(after.UnknownExtensions));
        Assert.Equal(120u, after.Header.HeaderLength);
        Assert.Equal(hc.Header.ExtraFields, after.Header.ExtraFields);
        Assert.NotNull(after.Bitmaps);
        Assert.Null(after.BackingFile);
        Assert.Equal(0, Qemu.Check(path).ExitCode);
    }

    [RequiresToolsFact("qemu-img")]
    public async Task Raw_external_data_file_stays_a_consistent_raw_image()
    {
        using var dir = new TempDir();
        var path = dir.File("img.qcow2");
        var data = dir.File("data.raw");
        await Qcow2Image.CreateAsync(path, 4 << 20, new Qcow2CreateOptions { DataFile = data, DataFileRaw = true });
        var node = await Qcow2Node.OpenAsync(path);
        var model = new ReferenceModel(4 << 20);
        await WriteInteropTests.RandomOpsAsync(node, model, 77, 200);
        await node.ResizeAsync(6 << 20);
        await node.WriteAsync(5 << 20, new byte[] { 1, 2, 3 }, IoFlags.None);
        var all = await TestImages.ReadAllAsync(node);
        await node.DisposeAsync();
        Assert.Equal(all, File.ReadAllBytes(data));
        var (rc, _, text) = Qemu.Check(path);
        Assert.True(rc == 0, text);
        Assert.Equal(all, Qemu.ToRaw(path, dir.Path));
    }
}
