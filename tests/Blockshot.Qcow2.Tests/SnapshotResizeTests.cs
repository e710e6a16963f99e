using Blockshot.Core;

namespace Blockshot.Qcow2.Tests;

public class SnapshotTests
{
    private const int Size = 4 << 20;

    [RequiresToolsTheory("qemu-img")]
    [InlineData("")]
    [InlineData("compat=0.10,cluster_size=4k")]
    [InlineData("extended_l2=on")]
    [InlineData("cluster_size=512,refcount_bits=4")]
    public async Task Snapshots_we_take_are_restored_by_the_peer_and_ours_restore_theirs(string options)
    {
        using var dir = new TempDir();
        var path = dir.File("img.qcow2");
        await Qcow2Image.CreateAsync(path, Size, CreateTests.Parse(options));
        var models = new Dictionary<string, byte[]>();
        var node = await Qcow2Node.OpenAsync(path);
        var model = new ReferenceModel(Size);
        for (var round = 0; round < 3; round++)
        {
            await WriteInteropTests.RandomOpsAsync(node, model, round + options.Length, 80);
            var info = await node.CreateSnapshotAsync($"s{round}");
            Assert.Equal((round + 1).ToString(), info.Id);
            models[$"s{round}"] = await TestImages.ReadAllAsync(node);
        }
        await WriteInteropTests.RandomOpsAsync(node, model, 99, 80);
        var current = await TestImages.ReadAllAsync(node);
        await node.DisposeAsync();

        Assert.Equal(0, Qemu.Check(path).ExitCode);
        var listed = Qemu.InfoJson(path).GetProperty("snapshots").EnumerateArray().Select(s => s.GetProperty("name").GetString()).ToList();
        Assert.Equal(["s0", "s1", "s2"], listed);
        Assert.Equal(current, Qemu.ToRaw(path, dir.Path));

        // The peer restores one of ours.
        var copy = dir.File("copy.qcow2");
        File.Copy(path, copy);
        Qemu.Img("snapshot", "-a", "s1", copy);
        Assert.Equal(models["s1"], Qemu.ToRaw(copy, dir.Path));

        // We restore each, delete one, and the image stays clean.
        await using (var again = await Qcow2Node.OpenAsync(path))
        {
            await again.ApplySnapshotAsync("s0");
            Assert.Equal(models["s0"], await TestImages.ReadAllAsync(again));
            await again.WriteAsync(1000, new byte[5000], IoFlags.None);
            await again.ApplySnapshotAsync("3");
            Assert.Equal(models["s2"], await TestImages.ReadAllAsync(again));
            await again.DeleteSnapshotAsync("s1");
            Assert.Equal(["s0", "s2"], again.Snapshots.Select(s => s.Name));
        }
        var (rc, _, text) = Qemu.Check(path);
        Assert.True(rc == 0, text);
        Qemu.Img("snapshot", "-a", "s0", path);
        Assert.Equal(models["s0"], Qemu.ToRaw(path, dir.Path));
        Assert.Equal(0, Qemu.Check(path).ExitCode);
    }

    [RequiresToolsFact("qemu-img", "qemu-io")]
    public async Task Deleting_every_snapshot_leaves_no_leaks()
    {
        using var dir = new TempDir();
        var path = dir.File("img.qcow2");
        Qemu.Img("create", "-f", "qcow2", path, Size.ToString());
        Qemu.Io(path, "write -P 1 0 1M");
        Qemu.Img("snapshot", "-c", "a", path);
        Qemu.Io(path, "write -P 2 512k 1M");
        Qemu.Img("snapshot", "-c", "b", path);
        Qemu.Io(path, "write -P 3 0 100k", "discard 2M 1M");
        var content = Qemu.ToRaw(path, dir.Path);
        await using (var node = await Qcow2Node.OpenAsync(path))
        {
            await node.DeleteSnapshotAsync("a");
            await node.DeleteSnapshotAsync("b");
            Assert.Empty(node.Snapshots);
        }
        var (rc, report, text) = Qemu.Check(path);
        Assert.True(rc == 0, text);
        Assert.Equal(content, Qemu.ToRaw(path, dir.Path));
        // With no snapshots left every cluster is exclusively owned again.
        Assert.DoesNotContain("OFLAG", text);
        _ = report;
    }

    [RequiresToolsFact("qemu-img")]
    public async Task Narrow_refcounts_refuse_a_snapshot_that_would_overflow_without_damage()
    {
        using var dir = new TempDir();
        var path = dir.File("img.qcow2");
        await Qcow2Image.CreateAsync(path, Size, new Qcow2CreateOptions { RefcountBits = 2 });
        await using (var node = await Qcow2Node.OpenAsync(path))
        {
            await node.WriteAsync(0, new byte[100_000], IoFlags.None);
            await node.CreateSnapshotAsync("a");
            await node.CreateSnapshotAsync("b");
            var e = await Assert.ThrowsAsync<BlockException>(() => node.CreateSnapshotAsync("c").AsTask());
            Assert.Equal(BlockError.Overflow, e.Error);
            await Assert.ThrowsAsync<BlockException>(() => node.CreateSnapshotAsync("a").AsTask());
        }
        Assert.Equal(0, Qemu.Check(path).ExitCode);
    }

    [Fact]
    public async Task Snapshots_are_refused_with_an_external_data_file()
    {
        using var dir = new TempDir();
        var path = dir.File("img.qcow2");
        await Qcow2Image.CreateAsync(path, Size, new Qcow2CreateOptions { DataFile = dir.File("d.bin") });
        await using var node = await Qcow2Node.OpenAsync(path);
        var e = await Assert.ThrowsAsync<BlockException>(() => node.CreateSnapshotAsync("x").AsTask());
        Assert.Equal(BlockError.NotSupported, e.Error);
    }
}

public class ResizeTests
{
    [RequiresToolsTheory("qemu-img")]
    [InlineData("")]
    [InlineData("cluster_size=512")]
    [InlineData("compat=0.10")]
    [InlineData("extended_l2=on")]
    public async Task Grow_reads_zeros_and_shrink_drops_an_unallocated_tail(string options)
    {
        using var dir = new TempDir();
        var path = dir.File("img.qcow2");
        await Qcow2Image.CreateAsync(path, 1 << 20, CreateTests.Parse(options));
        await using (var node = await Qcow2Node.OpenAsync(path))
        {
            await node.WriteAsync(0, Patterns.Make(1 << 20, 0, 1), IoFlags.None);
            await node.ResizeAsync(100L << 20);
            Assert.Equal(100L << 20, node.Size);
            var tail = new byte[4096];
            await node.ReadAsync((100L << 20) - 4096, tail);
            Assert.True(tail.AsSpan().IndexOfAnyExcept((byte)0) < 0);
            await node.WriteAsync(90L << 20, new byte[] { 1 }, IoFlags.None);
            var e = await Assert.ThrowsAsync<BlockException>(() => node.ResizeAsync(50L << 20).AsTask());
            Assert.Contains("cannot shrink", e.Message);
            await node.ResizeAsync(91L << 20);
            await node.TrimAsync(90L << 20, 1 << 20, IoFlags.None);
            await node.ResizeAsync(2L << 20);
            Assert.Equal(2L << 20, node.Size);
        }
        var (rc, _, text) = Qemu.Check(path);
        Assert.True(rc == 0, text);
        Assert.Equal(2L << 20, Qemu.InfoJson(path).GetProperty("virtual-size").GetInt64());
        var raw = Qemu.ToRaw(path, dir.Path);
        Assert.Equal(Patterns.Make(1 << 20, 0, 1), raw.AsSpan(0, 1 << 20).ToArray());
    }

    [RequiresToolsFact("qemu-img", "qemu-io")]
    public async Task Growing_over_a_longer_backing_file_does_not_expose_it()
    {
        using var dir = new TempDir();
        Qemu.Img("create", "-f", "qcow2", dir.File("base.qcow2"), "8M");
        Qemu.Io(dir.File("base.qcow2"), "write -P 0x55 0 8M");
        var path = dir.File("top.qcow2");
        Qemu.Img("create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", path, "8M");
        Qemu.Img("resize", "--shrink", path, "3000320");
        await using (var node = await Qcow2Node.OpenAsync(path))
        {
            Assert.Equal(3000320, node.Size);
            await node.ResizeAsync(6 << 20);
        }
        var raw = Qemu.ToRaw(path, dir.Path);
        Assert.True(raw.AsSpan(0, 3000320).IndexOfAnyExcept((byte)0x55) < 0);
        Assert.True(raw.AsSpan(3000320).IndexOfAnyExcept((byte)0) < 0);
        Assert.Equal(0, Qemu.Check(path).ExitCode);
    }

    [RequiresToolsFact("qemu-img")]
    public async Task Growing_past_the_l1_table_moves_it_and_bitmaps_follow()
    {
        using var dir = new TempDir();
        var path = dir.File("img.qcow2");
        await Qcow2Image.CreateAsync(path, 1 << 20, new Qcow2CreateOptions { ClusterSize = 512 });
        await using (var node = await Qcow2Node.OpenAsync(path))
        {
            await node.AddBitmapAsync("b");
            await node.WriteAsync(1000, new byte[] { 7 }, IoFlags.None);
            await node.ResizeAsync(200L << 20);
            await node.WriteAsync((200L << 20) - 1, new byte[] { 9 }, IoFlags.None);
        }
        var (rc, _, text) = Qemu.Check(path);
        Assert.True(rc == 0, text);
        var bitmap = Qemu.InfoJson(path).GetProperty("format-specific").GetProperty("data").GetProperty("bitmaps")[0];
        Assert.Equal("b", bitmap.GetProperty("name").GetString());
        await using var ro = await Qcow2Node.OpenAsync(path, new Qcow2OpenOptions { ReadOnly = true });
        var dirty = await BitmapTests.OurDirtyRangesAsync(ro, "b");
        Assert.Equal(2, dirty.Count);
    }
}
