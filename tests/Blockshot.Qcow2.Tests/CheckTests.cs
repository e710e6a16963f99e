namespace Blockshot.Qcow2.Tests;

/// <summary>Our check counts what the peer's check counts, and repairs what it repairs.</summary>
public class CheckTests
{
    private static string MakeImage(TempDir dir, string name = "img.qcow2", string options = "compat=1.1")
    {
        var path = dir.File(name);
        Qemu.Img("create", "-f", "qcow2", "-o", options, path, "8M");
        Qemu.Io(path, "write -P 1 0 300k", "write -P 2 2M 64k", "write -P 3 5M 4k");
        return path;
    }

    private static async Task AssertSameVerdictAsync(string path)
    {
        var (rc, report, text) = Qemu.Check(path);
        var ours = await Qcow2Image.CheckAsync(path);
        Assert.True(rc == ours.ExitCode, $"peer {rc} ours {ours.ExitCode}\npeer:\n{text}\nours:\n{ours.ToText()}");
        if (report.ValueKind == System.Text.Json.JsonValueKind.Object)
        {
            var corruptions = report.TryGetProperty("corruptions", out var c) ? c.GetInt32() : 0;
            var leaks = report.TryGetProperty("leaks", out var l) ? l.GetInt32() : 0;
            Assert.True(corruptions == ours.Corruptions && leaks == ours.Leaks,
                $"peer corruptions {corruptions} leaks {leaks}, ours {ours.Corruptions}/{ours.Leaks}\npeer:\n{text}\nours:\n{ours.ToText()}");
            Assert.Equal(report.GetProperty("image-end-offset").GetInt64(), ours.ImageEndOffset);
            Assert.Equal(report.GetProperty("allocated-clusters").GetInt64(), ours.AllocatedClusters);
        }
    }

    private static async Task AssertRepairMatchesAsync(string path, Qcow2RepairMode mode, TempDir dir)
    {
        var copy = dir.File("peer-copy.qcow2");
        File.Copy(path, copy, overwrite: true);
        var peer = Qemu.Check(copy, mode == Qcow2RepairMode.All ? "all" : "leaks");
        var ours = await Qcow2Image.CheckAsync(path, mode);
        Assert.True(peer.ExitCode == ours.ExitCode, $"after repair: peer {peer.ExitCode} ours {ours.ExitCode}\npeer:\n{peer.Text}\nours:\n{ours.ToText()}");
        var after = Qemu.Check(path);
        var peerAfter = Qemu.Check(copy);
        Assert.True(after.ExitCode == peerAfter.ExitCode, $"peer check of our repaired image: {after.ExitCode}, of its own: {peerAfter.ExitCode}\n{after.Text}");
        if (after.ExitCode == 0)
        {
            Assert.Equal(Qemu.ToRaw(copy, dir.Path), Qemu.ToRaw(path, dir.Path));
        }
    }

    [RequiresToolsFact("qemu-img", "qemu-io")]
    public async Task Clean_images_are_clean()
    {
        using var dir = new TempDir();
        foreach (var options in new[] { "compat=1.1", "compat=0.10", "extended_l2=on", "cluster_size=512,refcount_bits=2" })
        {
            var path = MakeImage(dir, options: options);
            Qemu.Img("snapshot", "-c", "s", path);
            Qemu.Io(path, "write -P 9 0 70k");
            if (!options.Contains("0.10", StringComparison.Ordinal))
            {
                Qemu.Img("bitmap", "--add", path, "b");
            }
            await AssertSameVerdictAsync(path);
            Assert.Equal(0, (await Qcow2Image.CheckAsync(path)).ExitCode);
        }
    }

    [RequiresToolsTheory("qemu-img", "qemu-io")]
    [InlineData(Qcow2RepairMode.Leaks)]
    [InlineData(Qcow2RepairMode.All)]
    public async Task Leaked_cluster_is_found_and_repaired(Qcow2RepairMode mode)
    {
        using var dir = new TempDir();
        var path = MakeImage(dir);
        var p = new ImagePatcher(path);
        var end = p.Bytes.Length / p.ClusterSize;
        p.Bytes = [.. p.Bytes, .. new byte[p.ClusterSize * 2]];
        p.SetRefcount(end, 1);
        p.Save();
        await AssertSameVerdictAsync(path);
        Assert.Equal(3, (await Qcow2Image.CheckAsync(path)).ExitCode);
        await AssertRepairMatchesAsync(path, mode, dir);
    }

    [RequiresToolsFact("qemu-img", "qemu-io")]
    public async Task Cleared_copied_flag_is_a_corruption_repaired_by_all()
    {
        using var dir = new TempDir();
        var path = MakeImage(dir);
        var p = new ImagePatcher(path);
        var (at, word) = p.NormalEntries()[2];
        p.SetU64(at, word & ~Format.L2Entry.Copied);
        p.Save();
        await AssertSameVerdictAsync(path);
        await AssertRepairMatchesAsync(path, Qcow2RepairMode.All, dir);
    }

    [RequiresToolsFact("qemu-img", "qemu-io")]
    public async Task Raised_refcount_on_a_copied_cluster_is_a_leak_and_a_flag_error()
    {
        using var dir = new TempDir();
        var path = MakeImage(dir);
        var p = new ImagePatcher(path);
        var (_, word) = p.NormalEntries()[0];
        p.SetRefcount((long)(word & Format.L2Entry.OffsetMask) / p.ClusterSize, 2);
        p.Save();
        await AssertSameVerdictAsync(path);
        await AssertRepairMatchesAsync(path, Qcow2RepairMode.All, dir);
    }

    [RequiresToolsTheory("qemu-img", "qemu-io")]
    [InlineData(Qcow2RepairMode.Leaks)]
    [InlineData(Qcow2RepairMode.All)]
    public async Task Zero_refcount_on_a_used_cluster_needs_a_rebuild(Qcow2RepairMode mode)
    {
        using var dir = new TempDir();
        var path = MakeImage(dir);
        var p = new ImagePatcher(path);
        foreach (var (_, word) in p.NormalEntries().Take(3))
        {
            p.SetRefcount((long)(word & Format.L2Entry.OffsetMask) / p.ClusterSize, 0);
        }
        p.Save();
        await AssertSameVerdictAsync(path);
        await AssertRepairMatchesAsync(path, mode, dir);
    }

    [RequiresToolsFact("qemu-img", "qemu-io")]
    public async Task Reserved_bits_and_offsets_past_the_end_are_corruptions()
    {
        using var dir = new TempDir();
        var path = MakeImage(dir);
        var p = new ImagePatcher(path);
        var entries = p.NormalEntries();
        p.SetU64(entries[0].At, entries[0].Word | 0x2);
        p.SetU64(entries[1].At, (entries[1].Word & ~Format.L2Entry.OffsetMask) | (1UL << 40));
        p.Save();
        await AssertSameVerdictAsync(path);
    }

    [RequiresToolsFact("qemu-img", "qemu-io")]
    public async Task Broken_refcount_table_entry_is_rebuilt()
    {
        using var dir = new TempDir();
        var path = MakeImage(dir);
        var p = new ImagePatcher(path);
        var rt = (long)p.Header.RefcountTableOffset;
        p.SetU64(rt, p.U64(rt) | 0x100);
        p.Save();
        await AssertSameVerdictAsync(path);
        var expected = Qemu.ToRaw(path, dir.Path);
        // The peer's own repair of this case trips its overlap check; ours rebuilds cleanly.
        var ours = await Qcow2Image.CheckAsync(path, Qcow2RepairMode.All);
        Assert.True(ours.ExitCode == 0, ours.ToText());
        Assert.Contains("Rebuilding refcount structure", ours.Messages);
        var (rc, _, text) = Qemu.Check(path);
        Assert.True(rc == 0, text);
        Assert.Equal(expected, Qemu.ToRaw(path, dir.Path));
    }
}
