using System.Text.Json;

namespace Blockshot.Interop.Tests;

/// <summary><c>blockshot serve</c> of qcow2 images: detected, with backing chains, locked, closed cleanly.</summary>
public class ServeQcow2Tests
{
    [RequiresToolsFact("fio", "qemu-img", "qemu-io")]
    public async Task Fio_verifies_through_the_export_and_the_image_checks_clean_after_sigterm()
    {
        using var dir = new TempDir();
        var baseImage = dir.File("base.qcow2");
        var image = dir.File("top.qcow2");
        await ImageTool.QemuOkAsync("create", "-q", "-f", "qcow2", baseImage, "64M");
        await ImageTool.IoAsync(baseImage, "qcow2", "write -P 0x11 0 64M");
        await ImageTool.QemuOkAsync("create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on,cluster_size=16k", "-b", "base.qcow2", "-F", "qcow2", image);
        await ImageTool.QemuOkAsync("bitmap", "--add", image, "changes");

        var served = await ServedImage.BlockshotAsync(dir.File("s.sock"), image, "--name", "disk");
        await using (served)
        {
            // While it runs: the image is ours (the peer cannot open it), dirty and the bitmap in use.
            var locked = await ImageTool.QemuAsync("info", image);
            Assert.Contains("lock", locked.Stderr, StringComparison.OrdinalIgnoreCase);
            var fio = await Run.ToEndAsync("fio", [
                "--name=verify", "--ioengine=nbd", "--uri=" + served.Uri("disk"), "--rw=randwrite", "--bs=4k",
                "--iodepth=16", "--size=48M", "--offset=4M", "--verify=crc32c", "--do_verify=1", "--verify_fatal=1",
                "--output-format=json"], TimeSpan.FromMinutes(5));
            fio.Ok("fio verify");
            var job = JsonDocument.Parse(fio.Stdout[fio.Stdout.IndexOf('{', StringComparison.Ordinal)..]).RootElement.GetProperty("jobs")[0];
            Assert.Equal(0, job.GetProperty("error").GetInt32());
            Assert.True(job.GetProperty("write").GetProperty("io_bytes").GetInt64() >= 48 << 20);
            var inUse = await ImageTool.QemuOkAsync("info", "-U", "--output=json", image);
            Assert.Contains("in-use", inUse);
            var (code, stderr) = await served.TerminateAsync();
            Assert.True(code == 0, $"serve exited {code}: {stderr}");
        }
        await ImageTool.AssertCleanAsync(image);
        var info = JsonDocument.Parse(await ImageTool.QemuOkAsync("info", "--output=json", image)).RootElement;
        Assert.False(info.GetProperty("dirty-flag").GetBoolean());
        var flags = info.GetProperty("format-specific").GetProperty("data").GetProperty("bitmaps")[0].GetProperty("flags");
        Assert.DoesNotContain("in-use", flags.EnumerateArray().Select(f => f.GetString()));
        // What fio did not touch still comes from the backing file.
        await ImageTool.IoAsync(image, "qcow2", "read -P 0x11 0 4M", "read -P 0x11 60M 4M");
    }

    [RequiresToolsFact("nbdinfo", "qemu-nbd", "qemu-img", "qemu-io")]
    public async Task Allocation_depth_and_extents_match_qemu_nbd_over_a_chain()
    {
        using var dir = new TempDir();
        var raw = ImageTool.RawWith(dir.File("base.raw"), 16 << 20, 2, (0, 300_000), (8 << 20, 1 << 20));
        var mid = dir.File("mid.qcow2");
        var top = dir.File("top.qcow2");
        await ImageTool.QemuOkAsync("create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", mid);
        await ImageTool.IoAsync(mid, "qcow2", "write -P 3 1M 1M", "write -z 8M 64k");
        await ImageTool.QemuOkAsync("create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", top);
        await ImageTool.IoAsync(top, "qcow2", "write -P 4 128k 64k", "write -z 9M 64k");

        await using var ours = await ServedImage.BlockshotAsync(dir.File("o.sock"), top, "--read-only");
        await using var peer = await ServedImage.QemuNbdAsync(dir.File("p.sock"), "-t", "-r", "-A", "-f", "qcow2", "-e", "4", top);
        foreach (var context in (string[])["qemu:allocation-depth", "base:allocation"])
        {
            var a = (await Run.ToEndAsync("nbdinfo", ["--map=" + context, ours.Uri()])).Ok("nbdinfo ours").Stdout;
            var b = (await Run.ToEndAsync("nbdinfo", ["--map=" + context, peer.Uri()])).Ok("nbdinfo peer").Stdout;
            Assert.Equal(b, a);
        }
        var depth = (await Run.ToEndAsync("nbdinfo", ["--map=qemu:allocation-depth", ours.Uri()])).Stdout;
        Assert.Contains("local", depth);
        Assert.Contains("backing depth 3", depth);
        var copy = dir.File("copy.raw");
        await ImageTool.QemuOkAsync("convert", "-f", "raw", "-O", "raw", ours.Uri(), copy);
        await ImageTool.AssertSameContentAsync(top, copy);
    }

    [RequiresToolsFact("qemu-nbd", "qemu-img")]
    public async Task Locks_keep_qemu_and_blockshot_apart_in_both_directions()
    {
        using var dir = new TempDir();
        var image = dir.File("x.qcow2");
        var backing = dir.File("b.qcow2");
        await ImageTool.QemuOkAsync("create", "-q", "-f", "qcow2", backing, "8M");
        await ImageTool.QemuOkAsync("create", "-q", "-f", "qcow2", "-b", "b.qcow2", "-F", "qcow2", image);
        await using (var peer = await ServedImage.QemuNbdAsync(dir.File("q.sock"), "-t", "-f", "qcow2", image))
        {
            var r = await Run.BlockshotAsync("serve", image, "--socket", dir.File("s.sock"));
            Assert.True(r.ExitCode == 4, $"exit {r.ExitCode}: {r.Stderr}");
            Assert.Contains("qemu-nbd", r.Stderr);
        }
        await using (var ours = await ServedImage.BlockshotAsync(dir.File("s2.sock"), image))
        {
            var q = await Run.ToEndAsync("qemu-nbd", ["-f", "qcow2", "-k", dir.File("q2.sock"), image]);
            Assert.NotEqual(0, q.ExitCode);
            Assert.Contains("lock", q.Stderr, StringComparison.OrdinalIgnoreCase);
            // The backing file is held read-only: readers may share it, a writer may not.
            (await ImageTool.QemuAsync("info", backing)).Ok("qemu-img info of the backing file");
            var write = await Run.ToEndAsync("qemu-io", ["-f", "qcow2", "-c", "write 0 4k", backing]);
            Assert.NotEqual(0, write.ExitCode);
        }
    }

    [Fact]
    public async Task Malformed_and_unsupported_images_exit_6()
    {
        using var dir = new TempDir();
        var bad = dir.File("bad.qcow2");
        var header = new byte[65536];
        ((byte[])[0x51, 0x46, 0x49, 0xfb]).CopyTo(header, 0);
        header[7] = 3;
        header[23] = 16;              // 64 KiB clusters
        header[79] = 0x80;            // an unknown incompatible feature bit (bit 7... of the low byte)
        header[99] = 4;               // refcount order
        header[103] = 104;            // header length
        File.WriteAllBytes(bad, header);
        var r = await Run.BlockshotAsync("serve", bad, "--socket", dir.File("s.sock"));
        Assert.True(r.ExitCode == 6, $"exit {r.ExitCode}: {r.Stderr}");
        Assert.Contains("bad.qcow2", r.Stderr);

        var direct = await Run.BlockshotAsync("serve", "-f", "qcow2", "--direct", bad, "--socket", dir.File("d.sock"));
        Assert.Equal(2, direct.ExitCode);
        Assert.Contains("qcow2", direct.Stderr);
    }
}
