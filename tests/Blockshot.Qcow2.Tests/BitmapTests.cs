using System.Diagnostics;
using System.Text.Json;
using Blockshot.Core;
using Blockshot.Core.Extents;

namespace Blockshot.Qcow2.Tests;

public class BitmapTests
{
    private const long Size = 10 << 20;

    /// <summary>Dirty ranges of a bitmap as the peer reads them (qemu-nbd export, mapped through the bitmap).</summary>
    internal static List<(long Start, long Length)> PeerDirtyRanges(string image, string bitmap)
    {
        var sock = Path.Combine(Path.GetTempPath(), $"bs-nbd-{Guid.NewGuid():N}.sock");
        var psi = new ProcessStartInfo(Tools.Require("qemu-nbd"))
        {
            UseShellExecute = false,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        foreach (var a in new[] { "-r", "-t", "-k", sock, "-B", bitmap, "-f", "qcow2", image })
        {
            psi.ArgumentList.Add(a);
        }
        using var server = Process.Start(psi)!;
        try
        {
            for (var i = 0; i < 100 && !File.Exists(sock); i++)
            {
                Thread.Sleep(50);
            }
            var json = Qemu.Img("map", "--output=json", "--image-opts",
                $"driver=nbd,server.type=unix,server.path={sock},x-dirty-bitmap=qemu:dirty-bitmap:{bitmap}");
            var ranges = new List<(long, long)>();
            foreach (var e in JsonDocument.Parse(json).RootElement.EnumerateArray())
            {
                if (!e.GetProperty("data").GetBoolean())
                {
                    ranges.Add((e.GetProperty("start").GetInt64(), e.GetProperty("length").GetInt64()));
                }
            }
            return ranges;
        }
        finally
        {
            server.Kill();
            server.WaitForExit();
            File.Delete(sock);
        }
    }

    internal static async Task<List<(long Start, long Length)>> OurDirtyRangesAsync(Qcow2Node node, string bitmap)
    {
        var list = new ExtentList();
        list.Reset(0, node.Size);
        await node.QueryBitmapAsync(bitmap, 0, node.Size, list);
        var ranges = new List<(long, long)>();
        foreach (var e in list.Items)
        {
            if (e.Flags == 1)
            {
                ranges.Add((e.Offset, e.Length));
            }
        }
        return ranges;
    }

    [RequiresToolsFact("qemu-img", "qemu-io", "qemu-nbd")]
    public async Task Peer_written_bitmaps_read_the_same()
    {
        using var dir = new TempDir();
        var path = dir.File("img.qcow2");
        Qemu.Img("create", "-f", "qcow2", path, Size.ToString());
        Qemu.Img("bitmap", "--add", path, "b1");
        Qemu.Img("bitmap", "--add", "-g", "4096", path, "fine");
        Qemu.Io(path, "write 1M 100k", "write 5000000 3", "write -z 8M 64k");
        var peer = PeerDirtyRanges(path, "b1");
        var peerFine = PeerDirtyRanges(path, "fine");
        await using var node = await Qcow2Node.OpenAsync(path, new Qcow2OpenOptions { ReadOnly = true });
        Assert.Equal(["b1", "fine"], node.Bitmaps.Select(b => b.Name));
        Assert.Equal(4096, node.Bitmaps[1].Granularity);
        Assert.Equal(peer, await OurDirtyRangesAsync(node, "b1"));
        Assert.Equal(peerFine, await OurDirtyRangesAsync(node, "fine"));
        Assert.Contains(node.StatusContexts, c => c.Name == "qemu:dirty-bitmap:fine");
    }

    [RequiresToolsFact("qemu-img", "qemu-io", "qemu-nbd")]
    public async Task Our_writes_are_recorded_and_the_peer_reads_our_bitmaps()
    {
        using var dir = new TempDir();
        var path = dir.File("img.qcow2");
        await Qcow2Image.CreateAsync(path, Size);
        Qemu.Img("bitmap", "--add", path, "peer");
        Qemu.Io(path, "write 0 4k");
        // Without our locks, so the peer can look at the image while it is open here.
        await using (var node = await Qcow2Node.OpenAsync(path, new Qcow2OpenOptions { Locking = false }))
        {
            Assert.Contains("in-use", Qemu.InfoJson(path).GetRawText(), StringComparison.Ordinal);
            await node.AddBitmapAsync("ours", 4096);
            await node.AddBitmapAsync("off", 65536, enabled: false);
            await node.WriteAsync(3 << 20, new byte[70000], IoFlags.None);
            await node.WriteZeroesAsync(6 << 20, 1 << 20, IoFlags.None);
            await node.TrimAsync(9 << 20, 1 << 20, IoFlags.None);
            var mine = await OurDirtyRangesAsync(node, "ours");
            Assert.Equal([(3L << 20, 73728L), (6L << 20, 1L << 20), (9L << 20, 1L << 20)], mine);
            Assert.Empty(await OurDirtyRangesAsync(node, "off"));
        }
        var (rc, _, text) = Qemu.Check(path);
        Assert.True(rc == 0, text);
        var info = Qemu.InfoJson(path).GetProperty("format-specific").GetProperty("data").GetProperty("bitmaps");
        Assert.Equal(3, info.GetArrayLength());
        foreach (var b in info.EnumerateArray())
        {
            var flags = b.GetProperty("flags").EnumerateArray().Select(f => f.GetString()).ToList();
            Assert.DoesNotContain("in-use", flags);
            Assert.Equal(b.GetProperty("name").GetString() != "off", flags.Contains("auto"));
        }
        Assert.Equal([(0L, 65536L), (3L << 20, 131072L), (6L << 20, 1L << 20), (9L << 20, 1L << 20)], PeerDirtyRanges(path, "peer"));
        Assert.Equal([(3L << 20, 73728L), (6L << 20, 1L << 20), (9L << 20, 1L << 20)], PeerDirtyRanges(path, "ours"));
        Assert.Empty(PeerDirtyRanges(path, "off"));
        Qemu.Img("bitmap", "--remove", path, "ours");
        Assert.Equal(0, Qemu.Check(path).ExitCode);
    }

    [RequiresToolsFact("qemu-img")]
    public async Task Bitmap_left_in_use_by_a_crash_is_inconsistent_and_can_only_be_removed()
    {
        using var dir = new TempDir();
        var path = dir.File("img.qcow2");
        await Qcow2Image.CreateAsync(path, Size);
        Qemu.Img("bitmap", "--add", path, "b1");
        // Open read-write and never close: the in-use flag stays on disk, as after a crash.
        // (A crashed process's locks vanish with it, so this one takes none.)
        var abandoned = await Qcow2Node.OpenAsync(path, new Qcow2OpenOptions { Locking = false });
        await abandoned.WriteAsync(0, new byte[4096], IoFlags.None);
        await abandoned.FlushAsync();
        GC.KeepAlive(abandoned);

        await using (var ro = await Qcow2Node.OpenAsync(path, new Qcow2OpenOptions { ReadOnly = true }))
        {
            var b = Assert.Single(ro.Bitmaps);
            Assert.True(b.Inconsistent);
            Assert.Contains("in-use", b.FlagNames);
            Assert.DoesNotContain(ro.StatusContexts, c => c.Name.StartsWith("qemu:dirty-bitmap", StringComparison.Ordinal));
        }
        await using (var rw = await Qcow2Node.OpenAsync(path))
        {
            var e = await Assert.ThrowsAsync<BlockException>(() => rw.ClearBitmapAsync("b1").AsTask());
            Assert.Contains("inconsistent", e.Message);
            await Assert.ThrowsAsync<BlockException>(() => rw.SetBitmapEnabledAsync("b1", false).AsTask());
            await rw.RemoveBitmapAsync("b1");
            Assert.Empty(rw.Bitmaps);
        }
        var (rc, _, text) = Qemu.Check(path);
        Assert.True(rc == 0, text);
        Assert.False(Qemu.InfoJson(path).GetProperty("format-specific").GetProperty("data").TryGetProperty("bitmaps", out _));
    }

    [RequiresToolsFact("qemu-img", "qemu-nbd")]
    public async Task Enable_disable_clear_and_merge()
    {
        using var dir = new TempDir();
        var path = dir.File("img.qcow2");
        await Qcow2Image.CreateAsync(path, Size, new Qcow2CreateOptions { ClusterSize = 4096 });
        await using (var node = await Qcow2Node.OpenAsync(path))
        {
            await node.AddBitmapAsync("a");
            await node.AddBitmapAsync("b", 65536);
            await node.WriteAsync(0, new byte[100], IoFlags.None);
            await node.SetBitmapEnabledAsync("a", false);
            await node.WriteAsync(1 << 20, new byte[100], IoFlags.None);
            Assert.Equal([(0L, 4096L)], await OurDirtyRangesAsync(node, "a"));
            await node.MergeBitmapsAsync("a", ["b"]);
            Assert.Equal([(0L, 65536L), (1L << 20, 65536L)], await OurDirtyRangesAsync(node, "a"));
            await node.ClearBitmapAsync("b");
            Assert.Empty(await OurDirtyRangesAsync(node, "b"));
            await Assert.ThrowsAsync<BlockException>(() => node.AddBitmapAsync("a").AsTask());
        }
        Assert.Equal(0, Qemu.Check(path).ExitCode);
        Assert.Equal([(0L, 65536L), (1L << 20, 65536L)], PeerDirtyRanges(path, "a"));
    }
}
