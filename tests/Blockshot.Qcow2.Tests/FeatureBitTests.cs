using System.Security.Cryptography;
using Blockshot.Core;
using Blockshot.Qcow2.Format;

namespace Blockshot.Qcow2.Tests;

/// <summary>Header feature bits behave as the format and the reference implementation require.</summary>
public class FeatureBitTests
{
    private static string Hash(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));

    [RequiresToolsFact("qemu-img", "qemu-io")]
    public async Task Dirty_image_after_a_lazy_refcount_crash_is_repaired_by_a_read_write_open()
    {
        using var dir = new TempDir();
        var path = dir.File("img.qcow2");
        Qemu.Img("create", "-f", "qcow2", "-o", "lazy_refcounts=on", path, "8M");
        Qemu.Io(path, "write -P 7 0 64k");
        // Crash in the middle: qemu-io aborts with the image dirty and refcounts not written.
        Qemu.Run("qemu-io", "-c", "write -P 8 1M 200k", "-c", "write -P 9 3M 4k", "-c", "abort", path);
        var before = new ImagePatcher(path);
        Assert.True((before.Header.Incompatible & IncompatibleFeatures.Dirty) != 0);
        Assert.Equal(2, Qemu.Check(path).ExitCode);
        var expected = Qemu.ToRaw(path, dir.Path);

        // Read-only: readable, nothing written.
        var hash = Hash(path);
        await using (var ro = await Qcow2Node.OpenAsync(path, new Qcow2OpenOptions { ReadOnly = true }))
        {
            Assert.Equal(expected, await TestImages.ReadAllAsync(ro));
        }
        Assert.Equal(hash, Hash(path));

        await using (var rw = await Qcow2Node.OpenAsync(path))
        {
            Assert.NotNull(rw.LastRepair);
            Assert.Equal(expected, await TestImages.ReadAllAsync(rw));
        }
        var after = new ImagePatcher(path);
        Assert.Equal(IncompatibleFeatures.None, after.Header.Incompatible & IncompatibleFeatures.Dirty);
        var (rc, _, text) = Qemu.Check(path);
        Assert.True(rc == 0, text);
        Assert.Equal(expected, Qemu.ToRaw(path, dir.Path));
    }

    [RequiresToolsFact("qemu-img", "qemu-io")]
    public async Task Corrupt_image_opens_read_only_but_not_read_write()
    {
        using var dir = new TempDir();
        var path = dir.File("img.qcow2");
        Qemu.Img("create", "-f", "qcow2", path, "8M");
        Qemu.Io(path, "write -P 7 0 64k");
        var p = new ImagePatcher(path);
        p.SetIncompatible((ulong)IncompatibleFeatures.Corrupt);
        p.Save();
        var e = await Assert.ThrowsAsync<BlockException>(() => Qcow2Node.OpenAsync(path).AsTask());
        Assert.Contains("Image is corrupt; cannot be opened read/write", e.Message);
        Assert.Equal(BlockError.AccessDenied, e.Error);
        var hash = Hash(path);
        await using (var ro = await Qcow2Node.OpenAsync(path, new Qcow2OpenOptions { ReadOnly = true }))
        {
            Assert.True(ro.IsCorrupt);
            var b = new byte[1];
            await ro.ReadAsync(100, b);
            Assert.Equal(7, b[0]);
        }
        Assert.Equal(hash, Hash(path));
        var repaired = await Qcow2Image.CheckAsync(path, Qcow2RepairMode.All);
        Assert.Equal(0, repaired.ExitCode);
        await using var again = await Qcow2Node.OpenAsync(path);
        Assert.False(again.IsCorrupt);
    }

    [RequiresToolsTheory("qemu-img")]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Unknown_incompatible_bit_is_refused_and_named(bool named)
    {
        using var dir = new TempDir();
        var path = dir.File("img.qcow2");
        Qemu.Img("create", "-f", "qcow2", path, "8M");
        var p = new ImagePatcher(path);
        p.SetIncompatible(1UL << 20);
        if (named)
        {
            // Rename the table's "dirty bit" entry (incompatible, bit 0) to describe bit 20.
            var table = p.Bytes.AsSpan().IndexOf("dirty bit"u8) - 2;
            p.Bytes[table + 1] = 20;
            "shiny new thing\0"u8.CopyTo(p.Bytes.AsSpan(table + 2));
        }
        p.Save();
        var peer = Qemu.Run("qemu-img", "info", path);
        var expected = named ? "Unsupported qcow2 feature(s): shiny new thing" : "Unsupported qcow2 feature(s): Unknown incompatible feature: 100000";
        Assert.Contains(expected, peer.All);
        var hash = Hash(path);
        foreach (var ro in new[] { true, false })
        {
            var e = await Assert.ThrowsAsync<BlockException>(() => Qcow2Node.OpenAsync(path, new Qcow2OpenOptions { ReadOnly = ro }).AsTask());
            Assert.Contains(expected, e.Message);
            Assert.Equal(BlockError.NotSupported, e.Error);
        }
        Assert.Equal(hash, Hash(path));
    }

    [RequiresToolsFact("qemu-img")]
    public async Task Unknown_autoclear_bits_are_cleared_on_read_write_open_and_compatible_ones_kept()
    {
        using var dir = new TempDir();
        var path = dir.File("img.qcow2");
        Qemu.Img("create", "-f", "qcow2", path, "8M");
        var p = new ImagePatcher(path);
        p.SetAutoclear(1UL << 40);
        p.SetU64(80, 1UL << 33);
        p.Save();
        var hash = Hash(path);
        await using (var ro = await Qcow2Node.OpenAsync(path, new Qcow2OpenOptions { ReadOnly = true }))
        {
        }
        Assert.Equal(hash, Hash(path));
        await using (var rw = await Qcow2Node.OpenAsync(path))
        {
            Assert.Equal(AutoclearFeatures.None, new ImagePatcher(path).Header.Autoclear);
        }
        var after = new ImagePatcher(path).Header;
        Assert.Equal(AutoclearFeatures.None, after.Autoclear);
        Assert.Equal((CompatibleFeatures)(1UL << 33), after.Compatible);
        Assert.Equal(0, Qemu.Check(path).ExitCode);
    }

    [RequiresToolsFact("qemu-img")]
    public async Task Lazy_refcounts_set_dirty_on_first_write_and_clear_it_on_close()
    {
        using var dir = new TempDir();
        var path = dir.File("img.qcow2");
        await Qcow2Image.CreateAsync(path, 8 << 20, new Qcow2CreateOptions { LazyRefcounts = true });
        await using (var node = await Qcow2Node.OpenAsync(path))
        {
            Assert.Equal(IncompatibleFeatures.None, new ImagePatcher(path).Header.Incompatible);
            await node.WriteAsync(0, new byte[] { 1, 2, 3 }, IoFlags.None);
            Assert.Equal(IncompatibleFeatures.Dirty, new ImagePatcher(path).Header.Incompatible);
            await node.FlushAsync();
        }
        Assert.Equal(IncompatibleFeatures.None, new ImagePatcher(path).Header.Incompatible);
        Assert.Equal(0, Qemu.Check(path).ExitCode);
    }
}
