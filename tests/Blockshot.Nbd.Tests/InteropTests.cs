using System.Text.Json;
using Blockshot.Core;

namespace Blockshot.Nbd.Tests;

/// <summary>Real NBD clients against the in-process server.</summary>
public class InteropTests
{
    /// <summary>A 64 MiB sparse raw file with random data islands, some unaligned.</summary>
    private static string MakeSparseImage(string path, long size = 64 << 20, int seed = 1)
    {
        using var f = File.Open(path, FileMode.Create, FileAccess.ReadWrite);
        f.SetLength(size);
        var rng = new Random(seed);
        for (var i = 0; i < 24; i++)
        {
            var length = rng.Next(1, 3 << 20);
            var offset = rng.NextInt64(0, size - length);
            if (i % 3 == 0)
            {
                offset &= ~0xFFFFL;
            }
            f.Position = offset;
            f.Write(Patterns.Make(length, offset, seed * 100 + i));
        }
        return path;
    }

    [RequiresToolsFact("qemu-img")]
    public async Task Qemu_img_converts_into_and_out_of_an_export_and_compares_identical()
    {
        await using var fx = new ServerFixture();
        fx.AddMemoryExport("disk", 64 << 20);
        var src = MakeSparseImage(Path.Combine(fx.Dir, "src.raw"));
        (await ProcessRunner.RunAsync("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", src, fx.Uri("disk")])).EnsureSuccess("convert in");
        var cmp = await ProcessRunner.RunAsync("qemu-img", ["compare", "-f", "raw", "-F", "raw", src, fx.Uri("disk")]);
        cmp.EnsureSuccess("compare");
        Assert.Contains("Images are identical", cmp.Stdout);

        var dst = Path.Combine(fx.Dir, "out.raw");
        (await ProcessRunner.RunAsync("qemu-img", ["convert", "-f", "raw", "-O", "raw", fx.Uri("disk"), dst])).EnsureSuccess("convert out");
        Assert.True(File.ReadAllBytes(src).AsSpan().SequenceEqual(File.ReadAllBytes(dst)), "round trip differs");

        // A change on the export is seen by compare.
        var node = fx.Server.Exports.Single().Slot;
        await node.WriteAsync(12345, new byte[] { 0xEE }, IoFlags.None);
        var differs = await ProcessRunner.RunAsync("qemu-img", ["compare", "-f", "raw", "-F", "raw", src, fx.Uri("disk")]);
        Assert.Equal(1, differs.ExitCode);
    }

    [RequiresToolsFact("nbdcopy")]
    public async Task Nbdcopy_round_trips_with_multi_conn()
    {
        await using var fx = new ServerFixture();
        fx.AddMemoryExport("disk", 64 << 20);
        var src = MakeSparseImage(Path.Combine(fx.Dir, "src.raw"), seed: 2);
        (await ProcessRunner.RunAsync("nbdcopy", ["--flush", src, fx.Uri("disk")])).EnsureSuccess("nbdcopy in");
        var dst = Path.Combine(fx.Dir, "out.raw");
        File.WriteAllBytes(dst, []);
        (await ProcessRunner.RunAsync("nbdcopy", ["-C", "4", fx.Uri("disk"), dst])).EnsureSuccess("nbdcopy out");
        Assert.True(File.ReadAllBytes(src).AsSpan().SequenceEqual(File.ReadAllBytes(dst)), "nbdcopy round trip differs");
    }

    [RequiresToolsFact("nbdcopy", "qemu-img")]
    public async Task Nbdcopy_with_zero_copy_reads_and_qemu_img_without_read_a_sparse_raw_file_exactly()
    {
        // The default: zero-copy while two or more connections read the export (nbdcopy opens four).
        await using var fx = new ServerFixture();
        var src = MakeSparseImage(Path.Combine(fx.Dir, "src.raw"), seed: 5);
        File.ReadAllBytes(src); // into the page cache, so the data runs are sent from there
        fx.AddExport("disk", Drivers.RawFileNode.Open(src, new Drivers.RawFileOptions { BufferPool = fx.Pool, ReadOnly = true }), readOnly: true);
        var dst = Path.Combine(fx.Dir, "out.raw");
        File.WriteAllBytes(dst, []);
        (await ProcessRunner.RunAsync("nbdcopy", ["-C", "4", fx.Uri("disk"), dst])).EnsureSuccess("nbdcopy out");
        Assert.True(File.ReadAllBytes(src).AsSpan().SequenceEqual(File.ReadAllBytes(dst)), "nbdcopy of the zero-copy export differs");
        var afterCopy = fx.Server.ZeroCopyReplies;
        if (Environment.OSVersion.Version >= new Version(6, 5))
        {
            Assert.True(afterCopy > 0, "no read of nbdcopy's four connections went out with sendfile");
        }
        // qemu-img reads over one connection: every read is copied.
        var cmp = await ProcessRunner.RunAsync("qemu-img", ["compare", "-f", "raw", "-F", "raw", src, fx.Uri("disk")]);
        cmp.EnsureSuccess("compare");
        Assert.Contains("Images are identical", cmp.Stdout);
        Assert.Equal(afterCopy, fx.Server.ZeroCopyReplies);
    }

    [RequiresToolsFact("fio")]
    public async Task Fio_nbd_engine_verifies_crc32c_at_queue_depth_32()
    {
        await using var fx = new ServerFixture();
        fx.AddMemoryExport("disk", 64 << 20);
        var r = await ProcessRunner.RunAsync("fio", [
            "--name=verify", "--ioengine=nbd", $"--uri={fx.Uri("disk")}", "--rw=randwrite", "--bs=4k", "--iodepth=32",
            "--size=32M", "--verify=crc32c", "--do_verify=1", "--verify_fatal=1", "--output-format=json"], TimeSpan.FromMinutes(3));
        r.EnsureSuccess("fio");
        using var doc = JsonDocument.Parse(r.Stdout[r.Stdout.IndexOf('{')..]);
        var job = doc.RootElement.GetProperty("jobs")[0];
        Assert.Equal(0, job.GetProperty("error").GetInt32());
        Assert.True(job.GetProperty("write").GetProperty("io_bytes").GetInt64() >= 32 << 20);
        Assert.True(job.GetProperty("read").GetProperty("io_bytes").GetInt64() >= 32 << 20, "fio did not read back to verify");
    }

    [RequiresToolsFact("nbdinfo")]
    public async Task Nbdinfo_reports_size_flags_block_sizes_and_lists_exports()
    {
        await using var fx = new ServerFixture();
        fx.AddMemoryExport("disk", 10 << 20, description: "test disk");
        fx.AddMemoryExport("other", 1 << 20, readOnly: true);
        var r = await ProcessRunner.RunAsync("nbdinfo", ["--json", fx.Uri("disk")]);
        r.EnsureSuccess("nbdinfo");
        using var doc = JsonDocument.Parse(r.Stdout);
        var export = doc.RootElement.GetProperty("exports")[0];
        Assert.Equal(10 << 20, export.GetProperty("export-size").GetInt64());
        Assert.True(export.GetProperty("can_multi_conn").GetBoolean());
        Assert.True(export.GetProperty("can_fast_zero").GetBoolean());
        Assert.False(export.GetProperty("is_read_only").GetBoolean());
        Assert.Equal(4096, export.GetProperty("block_size_preferred").GetInt32());
        Assert.Equal("test disk", export.GetProperty("description").GetString());
        Assert.Contains("base:allocation", export.GetProperty("contexts").EnumerateArray().Select(e => e.GetString()));

        var list = await ProcessRunner.RunAsync("nbdinfo", ["--list", "--json", $"nbd+unix://?socket={fx.SocketPath}"]);
        list.EnsureSuccess("nbdinfo --list");
        using var listed = JsonDocument.Parse(list.Stdout);
        var names = listed.RootElement.GetProperty("exports").EnumerateArray().Select(e => e.GetProperty("export-name").GetString()).ToHashSet();
        Assert.Equal(["disk", "other"], names.Order());
    }

    [RequiresToolsFact("nbdinfo")]
    public async Task Nbdinfo_map_shows_data_islands_and_holes()
    {
        await using var fx = new ServerFixture();
        var node = fx.AddMemoryExport("disk", 8 << 20);
        await node.WriteAsync(1 << 20, new byte[65536], IoFlags.None);
        await node.WriteAsync(5 << 20, new byte[4096], IoFlags.None);
        var r = await ProcessRunner.RunAsync("nbdinfo", ["--map", "--json", fx.Uri("disk")]);
        r.EnsureSuccess("nbdinfo --map");
        using var doc = JsonDocument.Parse(r.Stdout);
        var map = doc.RootElement.EnumerateArray().Select(e => (e.GetProperty("offset").GetInt64(), e.GetProperty("length").GetInt64(), e.GetProperty("type").GetInt32())).ToList();
        Assert.Equal([(0, 1 << 20, 3), (1 << 20, 65536, 0), ((1 << 20) + 65536, (4 << 20) - 65536, 3), (5 << 20, 4096, 0), ((5 << 20) + 4096, (3 << 20) - 4096, 3)], map);
    }

    [RequiresToolsFact("nbdsh")]
    public async Task Nbdsh_sees_the_error_codes_the_protocol_requires()
    {
        await using var fx = new ServerFixture();
        fx.AddMemoryExport("disk", 1 << 20);
        fx.AddMemoryExport("ro", 1 << 20, readOnly: true);
        var script = $$"""
            import errno, nbd
            def expect(errnum, fn):
                try:
                    fn()
                except nbd.Error as e:
                    assert e.errnum == errnum, "expected %d, got %s (%s)" % (errnum, e.errnum, e.string)
                    return
                raise AssertionError("no error, expected %d" % errnum)

            h = nbd.NBD()
            h.connect_uri("{{fx.Uri("disk")}}")
            size = h.get_size()
            h.set_strict_mode(0)
            expect(errno.EINVAL, lambda: h.pread(10, size - 5))
            expect(errno.ENOSPC, lambda: h.pwrite(b"x" * 10, size - 5))
            expect(errno.ENOSPC, lambda: h.zero(10, size - 5))
            expect(errno.EINVAL, lambda: h.trim(10, size - 5))
            expect(errno.EINVAL, lambda: h.pread(512, 0, nbd.CMD_FLAG_REQ_ONE))
            expect(errno.EINVAL, lambda: h.pwrite(b"x", 0, nbd.CMD_FLAG_NO_HOLE))
            h.pwrite(b"abc", 100, nbd.CMD_FLAG_FUA)
            assert h.pread(3, 100) == b"abc"
            h.zero(4096, 0, nbd.CMD_FLAG_FAST_ZERO)
            h.flush()
            h.cache(4096, 0)
            h.shutdown()

            r = nbd.NBD()
            r.connect_uri("{{fx.Uri("ro")}}")
            assert r.is_read_only()
            r.set_strict_mode(0)
            expect(errno.EPERM, lambda: r.pwrite(b"x", 0))
            expect(errno.EPERM, lambda: r.trim(512, 0))
            assert r.pread(4, 0) == bytes(4)
            r.shutdown()
            print("ok")
            """;
        var path = Path.Combine(fx.Dir, "errors.py");
        await File.WriteAllTextAsync(path, script);
        var result = await ProcessRunner.RunAsync("/usr/bin/python3", [path]);
        result.EnsureSuccess("nbd error script");
        Assert.Contains("ok", result.Stdout);
    }

    [RequiresToolsFact("qemu-io")]
    public async Task Sixteen_qemu_io_processes_at_once_each_verify_their_region()
    {
        await using var fx = new ServerFixture();
        fx.AddMemoryExport("disk", 64 << 20);
        var runs = Enumerable.Range(0, 16).Select(i => ProcessRunner.RunAsync("qemu-io", [
            "-f", "raw",
            "-c", $"write -P {i + 1} {i * 4}M 4M",
            "-c", $"read -P {i + 1} {i * 4}M 4M",
            fx.Uri("disk")]));
        foreach (var r in await Task.WhenAll(runs))
        {
            r.EnsureSuccess("qemu-io");
            Assert.DoesNotContain("verification failed", r.Stdout + r.Stderr, StringComparison.OrdinalIgnoreCase);
        }
    }
}
