using System.Text.Json;
using System.Text.Json.Nodes;
using Blockshot.Core;

namespace Blockshot.Qcow2.Tests;

public class InfoMapAmendTests
{
    private static void AssertJsonEqual(string expected, string actual)
    {
        var a = JsonNode.Parse(expected);
        var b = JsonNode.Parse(actual);
        Assert.True(JsonNode.DeepEquals(a, b), $"expected\n{expected}\nactual\n{actual}");
    }

    [RequiresToolsFact("qemu-img", "qemu-io")]
    public async Task Info_matches_the_peer_field_for_field()
    {
        using var dir = new TempDir();
        var cases = new List<string>();
        var basePath = dir.File("base.qcow2");
        Qemu.Img("create", "-f", "qcow2", "-o", "compat=0.10", basePath, "8M");
        Qemu.Io(basePath, "write 0 1M");
        cases.Add(basePath);
        var top = dir.File("top.qcow2");
        Qemu.Img("create", "-f", "qcow2", "-o", "lazy_refcounts=on,extended_l2=on,compression_type=zstd", "-b", "base.qcow2", "-F", "qcow2", top);
        Qemu.Io(top, "write 1M 1M");
        Qemu.Img("snapshot", "-c", "first", top);
        Qemu.Img("bitmap", "--add", "-g", "4096", top, "fine");
        Qemu.Img("bitmap", "--add", "--disable", top, "off");
        cases.Add(top);
        var data = dir.File("data.qcow2");
        Qemu.Img("create", "-f", "qcow2", "-o", $"data_file={dir.File("data.bin")},data_file_raw=on,refcount_bits=8", data, "4M");
        cases.Add(data);
        foreach (var path in cases)
        {
            var ours = (await Qcow2Image.InfoAsync(path)).ToJson();
            AssertJsonEqual(Qemu.Img("info", "--output=json", path), ours);
        }
        var chain = await Qcow2Image.InfoChainAsync(top);
        Assert.Equal(2, chain.Count);
    }

    [RequiresToolsFact("qemu-img", "qemu-io")]
    public async Task Map_matches_the_peer_through_a_chain()
    {
        using var dir = new TempDir();
        var basePath = dir.File("base.qcow2");
        Qemu.Img("create", "-f", "qcow2", basePath, "4M");
        Qemu.Io(basePath, "write -P 1 0 1M", "write -z 2M 64k");
        var top = dir.File("top.qcow2");
        Qemu.Img("create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top);
        Qemu.Io(top, "write -P 2 512k 64k", "write -z 3M 64k", "write -P 3 3500k 10k");
        var peer = JsonDocument.Parse(Qemu.Img("map", "--output=json", top)).RootElement;
        var ours = await Qcow2Image.MapAsync(top);
        Assert.Equal(peer.GetArrayLength(), ours.Count);
        for (var i = 0; i < ours.Count; i++)
        {
            var p = peer[i];
            var o = ours[i];
            Assert.Equal(p.GetProperty("start").GetInt64(), o.Start);
            Assert.Equal(p.GetProperty("length").GetInt64(), o.Length);
            Assert.Equal(p.GetProperty("depth").GetInt32(), o.Depth);
            Assert.Equal(p.GetProperty("present").GetBoolean(), o.Present);
            Assert.Equal(p.GetProperty("zero").GetBoolean(), o.Zero);
            Assert.Equal(p.GetProperty("data").GetBoolean(), o.Data);
            Assert.Equal(p.TryGetProperty("offset", out var off) ? off.GetInt64() : null, o.Offset);
        }
    }

    [RequiresToolsFact("qemu-img", "qemu-io")]
    public async Task Amend_changes_compat_lazy_refcounts_and_refcount_width_keeping_data()
    {
        using var dir = new TempDir();
        var path = dir.File("img.qcow2");
        Qemu.Img("create", "-f", "qcow2", path, "8M");
        Qemu.Io(path, "write -P 1 0 1M", "write -z 2M 128k", "write -P 2 5M 70k", "discard 5M 64k");
        Qemu.Img("snapshot", "-c", "s", path);
        Qemu.Io(path, "write -P 3 0 64k");
        var content = Qemu.ToRaw(path, dir.Path);
        foreach (var bits in new[] { 1 << 3, 64, 2, 16 })
        {
            await Qcow2Image.AmendAsync(path, new Qcow2AmendOptions { RefcountBits = bits });
            var (rc, _, text) = Qemu.Check(path);
            Assert.True(rc == 0, $"refcount_bits={bits}: {text}");
            Assert.Equal(bits, Qemu.InfoJson(path).GetProperty("format-specific").GetProperty("data").GetProperty("refcount-bits").GetInt32());
            Assert.Equal(content, Qemu.ToRaw(path, dir.Path));
        }
        await Qcow2Image.AmendAsync(path, new Qcow2AmendOptions { LazyRefcounts = true });
        Assert.True(Qemu.InfoJson(path).GetProperty("format-specific").GetProperty("data").GetProperty("lazy-refcounts").GetBoolean());
        await Qcow2Image.AmendAsync(path, new Qcow2AmendOptions { LazyRefcounts = false });
        await Qcow2Image.DeleteSnapshotAsync(path, "s");
        await Qcow2Image.AmendAsync(path, new Qcow2AmendOptions { Compat = Qcow2Compat.V2 });
        Assert.Equal("0.10", Qemu.InfoJson(path).GetProperty("format-specific").GetProperty("data").GetProperty("compat").GetString());
        Assert.Equal(0, Qemu.Check(path).ExitCode);
        Assert.Equal(content, Qemu.ToRaw(path, dir.Path));
        await Qcow2Image.AmendAsync(path, new Qcow2AmendOptions { Compat = Qcow2Compat.V3 });
        Assert.Equal("1.1", Qemu.InfoJson(path).GetProperty("format-specific").GetProperty("data").GetProperty("compat").GetString());
        Assert.Equal(0, Qemu.Check(path).ExitCode);
        Assert.Equal(content, Qemu.ToRaw(path, dir.Path));
    }

    [RequiresToolsFact("qemu-img", "qemu-io")]
    public async Task Rebase_unsafe_and_snapshot_views()
    {
        using var dir = new TempDir();
        Qemu.Img("create", "-f", "qcow2", dir.File("a.qcow2"), "4M");
        Qemu.Io(dir.File("a.qcow2"), "write -P 1 0 4M");
        Qemu.Img("create", "-f", "qcow2", dir.File("b.qcow2"), "4M");
        Qemu.Io(dir.File("b.qcow2"), "write -P 2 0 4M");
        var top = dir.File("top.qcow2");
        await Qcow2Image.CreateAsync(top, -1, new Qcow2CreateOptions { BackingFile = "a.qcow2", BackingFormat = "qcow2" });
        await using (var node = await Qcow2Node.OpenAsync(top))
        {
            await node.WriteAsync(0, new byte[] { 9 }, IoFlags.None);
            await node.CreateSnapshotAsync("snap");
            await node.WriteAsync(0, new byte[] { 8 }, IoFlags.None);
        }
        await Qcow2Image.RebaseUnsafeAsync(top, "b.qcow2", "qcow2");
        Assert.Equal("b.qcow2", Qemu.InfoJson(top).GetProperty("backing-filename").GetString());
        var raw = Qemu.ToRaw(top, dir.Path);
        Assert.Equal(8, raw[0]);
        Assert.Equal(2, raw[1 << 20]);
        await using var view = await Qcow2Node.OpenAsync(top, new Qcow2OpenOptions { ReadOnly = true, Snapshot = "snap" });
        var viewed = await TestImages.ReadAllAsync(view);
        var peerView = dir.File("view.raw");
        Qemu.Img("convert", "-O", "raw", "-l", "snapshot.name=snap", top, peerView);
        Assert.Equal(File.ReadAllBytes(peerView), viewed);
        Assert.Equal(9, viewed[0]);
        await Assert.ThrowsAsync<BlockException>(() => Qcow2Node.OpenAsync(top, new Qcow2OpenOptions { Snapshot = "snap", Locking = false }).AsTask());
    }
}

public class StatusContextTests
{
    /// <summary>Raw (offset, length, value) runs of a metadata context as the reference server reports them.</summary>
    private static List<(long Offset, long Length, uint Value)> PeerContext(string image, string context, params string[] serverArgs)
    {
        var sock = Path.Combine(Path.GetTempPath(), $"bs-ctx-{Guid.NewGuid():N}.sock");
        var psi = new System.Diagnostics.ProcessStartInfo(Tools.Require("qemu-nbd")) { UseShellExecute = false, RedirectStandardError = true };
        foreach (var a in serverArgs.Concat(["-r", "-t", "-k", sock, "-f", "qcow2", image]))
        {
            psi.ArgumentList.Add(a);
        }
        using var server = System.Diagnostics.Process.Start(psi)!;
        try
        {
            for (var i = 0; i < 100 && !File.Exists(sock); i++)
            {
                Thread.Sleep(50);
            }
            var text = Qemu.Ok("nbdinfo", $"--map={context}", $"nbd+unix:///?socket={sock}");
            var runs = new List<(long, long, uint)>();
            foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                runs.Add((long.Parse(parts[0]), long.Parse(parts[1]), uint.Parse(parts[2])));
            }
            return runs;
        }
        finally
        {
            server.Kill();
            server.WaitForExit();
            File.Delete(sock);
        }
    }

    [RequiresToolsFact("qemu-img", "qemu-io", "qemu-nbd", "nbdinfo")]
    public async Task Allocation_depth_matches_the_reference_server()
    {
        using var dir = new TempDir();
        Qemu.Img("create", "-f", "qcow2", dir.File("l0.qcow2"), "3M");
        Qemu.Io(dir.File("l0.qcow2"), "write -P 1 0 1M");
        Qemu.Img("create", "-f", "qcow2", "-b", "l0.qcow2", "-F", "qcow2", dir.File("l1.qcow2"), "4M");
        Qemu.Io(dir.File("l1.qcow2"), "write -P 2 512k 128k", "write -z 2M 64k");
        var top = dir.File("l2.qcow2");
        Qemu.Img("create", "-f", "qcow2", "-b", "l1.qcow2", "-F", "qcow2", top, "5M");
        Qemu.Io(top, "write -P 3 0 64k", "write -z 1500k 64k");
        var peer = PeerContext(top, "qemu:allocation-depth", "-A");
        await using var node = await Qcow2Node.OpenAsync(top, new Qcow2OpenOptions { ReadOnly = true });
        var context = node.FindStatusContext("qemu:allocation-depth")!;
        var list = new Blockshot.Core.Extents.ExtentList();
        list.Reset(0, node.Size);
        await context.QueryAsync(0, node.Size, list);
        Assert.Equal(peer, list.Items.ToArray().Select(e => (e.Offset, e.Length, e.Flags)).ToList());
    }

    [RequiresToolsFact("qemu-img", "qemu-io", "qemu-nbd", "nbdinfo")]
    public async Task Dirty_bitmap_context_matches_the_reference_server()
    {
        using var dir = new TempDir();
        var path = dir.File("img.qcow2");
        Qemu.Img("create", "-f", "qcow2", path, "8M");
        Qemu.Img("bitmap", "--add", "-g", "16384", path, "b");
        Qemu.Io(path, "write 100k 50k", "write 6M 1");
        await using (var node = await Qcow2Node.OpenAsync(path))
        {
            await node.WriteAsync(3 << 20, new byte[70000], IoFlags.None);
        }
        var peer = PeerContext(path, "qemu:dirty-bitmap:b", "-B", "b");
        await using var ro = await Qcow2Node.OpenAsync(path, new Qcow2OpenOptions { ReadOnly = true });
        var list = new Blockshot.Core.Extents.ExtentList();
        list.Reset(0, ro.Size);
        await ro.FindStatusContext("qemu:dirty-bitmap:b")!.QueryAsync(0, ro.Size, list);
        Assert.Equal(peer, list.Items.ToArray().Select(e => (e.Offset, e.Length, e.Flags)).ToList());
    }
}

public class BaseAllocationTests
{
    [RequiresToolsFact("qemu-img", "qemu-io", "qemu-nbd", "nbdinfo")]
    public async Task Base_allocation_extents_match_the_reference_server()
    {
        using var dir = new TempDir();
        Qemu.Img("create", "-f", "qcow2", dir.File("base.qcow2"), "3M");
        Qemu.Io(dir.File("base.qcow2"), "write -P 1 0 1M", "write -z 2M 128k");
        var top = dir.File("top.qcow2");
        Qemu.Img("create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top, "4M");
        Qemu.Io(top, "write -P 3 512k 64k", "write -z 0 64k", "discard 3M 64k", "write -P 4 3500k 4k");
        var sock = Path.Combine(Path.GetTempPath(), $"bs-ba-{Guid.NewGuid():N}.sock");
        var psi = new System.Diagnostics.ProcessStartInfo(Tools.Require("qemu-nbd")) { UseShellExecute = false, RedirectStandardError = true };
        foreach (var a in new[] { "-r", "-t", "-k", sock, "-f", "qcow2", top })
        {
            psi.ArgumentList.Add(a);
        }
        using var server = System.Diagnostics.Process.Start(psi)!;
        string text;
        try
        {
            for (var i = 0; i < 100 && !File.Exists(sock); i++)
            {
                Thread.Sleep(50);
            }
            text = Qemu.Ok("nbdinfo", "--map", $"nbd+unix:///?socket={sock}");
        }
        finally
        {
            server.Kill();
            server.WaitForExit();
            File.Delete(sock);
        }
        var peer = text.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Select(p => (long.Parse(p[0]), long.Parse(p[1]), uint.Parse(p[2]))).ToList();
        await using var node = await Qcow2Node.OpenAsync(top, new Qcow2OpenOptions { ReadOnly = true });
        var list = new Blockshot.Core.Extents.ExtentList();
        list.Reset(0, node.Size);
        await node.GetExtentsAsync(0, node.Size, list);
        Assert.Equal(peer, list.Items.ToArray().Select(e => (e.Offset, e.Length, e.Flags)).ToList());
    }
}
