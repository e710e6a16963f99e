using System.Text.Json;

namespace Blockshot.Interop.Tests;

/// <summary>
/// compare, commit, rebase, resize, snapshot, bitmap and amend: each done by us and by the reference
/// tool on identical copies, the results checked with the reference tool.
/// </summary>
public class ImageChangeTests
{
    /// <summary>base.qcow2 ← top.qcow2 with data in both, a zero cluster and a size step.</summary>
    private static async Task<(string Base, string Top)> ChainAsync(TempDir dir, string prefix)
    {
        var b = dir.File(prefix + "base.qcow2");
        var t = dir.File(prefix + "top.qcow2");
        await ImageTool.QemuOkAsync("create", "-q", "-f", "qcow2", b, "24M");
        await ImageTool.IoAsync(b, "qcow2", "write -P 1 0 4M", "write -P 7 20M 1M");
        await ImageTool.QemuOkAsync("create", "-q", "-f", "qcow2", "-b", Path.GetFileName(b), "-F", "qcow2", t, "32M");
        await ImageTool.IoAsync(t, "qcow2", "write -P 2 1M 1M", "write -z 3M 64k", "write -P 3 10M 100k", "write -P 4 30M 64k");
        return (b, t);
    }

    /// <summary>The reference tool's map without host offsets (where data lands in the file may differ).</summary>
    private static async Task<string> MapAsync(string image) =>
        System.Text.RegularExpressions.Regex.Replace(await ImageTool.QemuOkAsync("map", "--output=json", image), ", \"offset\": \\d+", "");

    /// <summary>The map lines of runs the image itself holds.</summary>
    private static string[] LocalRuns(string map) =>
        [.. map.Split('\n').Where(l => l.Contains("\"depth\": 0", StringComparison.Ordinal) && l.Contains("\"present\": true", StringComparison.Ordinal)).Select(l => l.TrimEnd(',', ']'))];

    [RequiresToolsFact("qemu-img", "qemu-io")]
    public async Task Compare_reports_like_the_reference_tool()
    {
        using var dir = new TempDir();
        var a = ImageTool.RawWith(dir.File("a.raw"), 10 << 20, 1, (0, 70_000));
        var b = dir.File("b.qcow2");
        await ImageTool.QemuOkAsync("convert", "-O", "qcow2", a, b);
        var same = await ImageTool.OursAsync("compare", a, b);
        Assert.Equal(0, same.ExitCode);
        Assert.Equal("Images are identical.\n", same.Stdout);

        await ImageTool.IoAsync(b, "qcow2", "write -P 9 5000 1");
        foreach (var args in (string[][])[[a, b], ["-s", a, b]])
        {
            var ours = await ImageTool.OursAsync(["compare", .. args]);
            var theirs = await ImageTool.QemuAsync(["compare", .. args]);
            Assert.Equal(theirs.ExitCode, ours.ExitCode);
            Assert.Equal(theirs.Stdout, ours.Stdout);
        }

        // Different sizes: the same when the tail reads as zeros, unless strict.
        var longer = dir.File("longer.qcow2");
        await ImageTool.QemuOkAsync("convert", "-O", "qcow2", a, longer);
        await ImageTool.QemuOkAsync("resize", longer, "12M");
        foreach (var args in (string[][])[[a, longer], ["-s", a, longer], ["-q", a, longer]])
        {
            var ours = await ImageTool.OursAsync(["compare", .. args]);
            var theirs = await ImageTool.QemuAsync(["compare", .. args]);
            Assert.Equal(theirs.ExitCode, ours.ExitCode);
            Assert.Equal(theirs.Stdout, ours.Stdout);
        }
        await ImageTool.IoAsync(longer, "qcow2", "write -P 1 11M 4k");
        var tail = await ImageTool.OursAsync("compare", a, longer);
        Assert.Equal(1, tail.ExitCode);
        Assert.Contains("Content mismatch at offset 11534336!", tail.Stdout);

        Assert.Equal(2, (await ImageTool.OursAsync("compare", a, dir.File("nope.raw"))).ExitCode);
    }

    [RequiresToolsFact("qemu-img", "qemu-io")]
    public async Task Commit_writes_into_the_backing_file_as_the_reference_tool_does()
    {
        using var dir = new TempDir();
        var (ob, ot) = await ChainAsync(dir, "o-");
        var (pb, pt) = await ChainAsync(dir, "p-");
        var expected = dir.File("expected.raw");
        await ImageTool.QemuOkAsync("convert", "-O", "raw", ot, expected);

        Assert.Contains("Image committed.", await ImageTool.OursOkAsync("commit", ot));
        await ImageTool.QemuOkAsync("commit", "-q", pt);
        await ImageTool.AssertCleanAsync(ob);
        await ImageTool.AssertCleanAsync(ot);
        await ImageTool.AssertSameContentAsync(expected, ob);
        await ImageTool.AssertSameContentAsync(expected, ot);
        await ImageTool.AssertSameContentAsync(pb, ob);
        Assert.Equal(32 << 20, JsonDocument.Parse(await ImageTool.QemuOkAsync("info", "--output=json", ob)).RootElement.GetProperty("virtual-size").GetInt64());
        // The top is empty afterwards: every run comes from the base, as after the reference commit.
        Assert.DoesNotContain("\"depth\": 0", await MapAsync(ot));
        Assert.Equal(await MapAsync(pt), await MapAsync(ot));

        // -d keeps the top; a named base deeper in the chain receives the data.
        var (kb, kt) = await ChainAsync(dir, "k-");
        var mid = dir.File("k-mid.qcow2");
        var top = dir.File("k-new.qcow2");
        await ImageTool.QemuOkAsync("rebase", "-u", "-b", "k-mid.qcow2", "-F", "qcow2", kt);
        await ImageTool.QemuOkAsync("create", "-q", "-f", "qcow2", "-b", "k-base.qcow2", "-F", "qcow2", mid, "32M");
        await ImageTool.IoAsync(mid, "qcow2", "write -P 8 6M 1M");
        await ImageTool.QemuOkAsync("create", "-q", "-f", "qcow2", "-b", "k-top.qcow2", "-F", "qcow2", top);
        var chainContent = dir.File("k.raw");
        await ImageTool.QemuOkAsync("convert", "-O", "raw", top, chainContent);
        var topMap = await MapAsync(kt);
        await ImageTool.OursOkAsync("commit", "-b", kb, top);
        await ImageTool.AssertSameContentAsync(chainContent, kb);
        await ImageTool.AssertSameContentAsync(chainContent, top);
        Assert.Equal(LocalRuns(topMap), LocalRuns(await MapAsync(kt)));
        Assert.Equal(1, (await ImageTool.OursAsync("commit", kb)).ExitCode);
    }

    [RequiresToolsFact("qemu-img", "qemu-io")]
    public async Task Rebase_safe_and_unsafe_match_the_reference_tool()
    {
        using var dir = new TempDir();
        foreach (var prefix in (string[])["o-", "p-"])
        {
            await ChainAsync(dir, prefix);
            var other = dir.File(prefix + "other.qcow2");
            await ImageTool.QemuOkAsync("create", "-q", "-f", "qcow2", other, "16M");
            await ImageTool.IoAsync(other, "qcow2", "write -P 1 0 2M", "write -P 5 8M 1M");
        }
        var (ot, pt) = (dir.File("o-top.qcow2"), dir.File("p-top.qcow2"));
        var expected = dir.File("expected.raw");
        await ImageTool.QemuOkAsync("convert", "-O", "raw", ot, expected);

        await ImageTool.OursOkAsync("rebase", "-b", "o-other.qcow2", "-F", "qcow2", ot);
        await ImageTool.QemuOkAsync("rebase", "-b", "p-other.qcow2", "-F", "qcow2", pt);
        await ImageTool.AssertCleanAsync(ot);
        await ImageTool.AssertSameContentAsync(expected, ot);
        Assert.Equal(await MapAsync(pt), await MapAsync(ot));
        Assert.Equal("o-other.qcow2", JsonDocument.Parse(await ImageTool.QemuOkAsync("info", "--output=json", ot)).RootElement.GetProperty("backing-filename").GetString());

        // To no backing file at all, then -u back: the name changes, nothing is copied.
        await ImageTool.OursOkAsync("rebase", "-b", "", ot);
        await ImageTool.AssertSameContentAsync(expected, ot);
        var before = await MapAsync(ot);
        await ImageTool.OursOkAsync("rebase", "-u", "-b", "o-base.qcow2", "-F", "qcow2", ot);
        Assert.Equal("o-base.qcow2", JsonDocument.Parse(await ImageTool.QemuOkAsync("info", "--output=json", ot)).RootElement.GetProperty("backing-filename").GetString());
        Assert.Equal(LocalRuns(before), LocalRuns(await MapAsync(ot)));
        await ImageTool.AssertCleanAsync(ot);

        Assert.Equal(1, (await ImageTool.OursAsync("rebase", "-b", "o-base.qcow2", ot)).ExitCode);
        Assert.Equal(3, (await ImageTool.OursAsync("rebase", "-b", "missing.qcow2", "-F", "qcow2", ot)).ExitCode);
    }

    [RequiresToolsFact("qemu-img", "qemu-io")]
    public async Task Resize_grows_and_shrinks_like_the_reference_tool()
    {
        using var dir = new TempDir();
        foreach (var format in (string[])["qcow2", "raw"])
        {
            var ours = dir.File("ours." + format);
            var peer = dir.File("peer." + format);
            foreach (var image in (string[])[ours, peer])
            {
                await ImageTool.QemuOkAsync("create", "-q", "-f", format, image, "8M");
                await ImageTool.IoAsync(image, format, "write -P 3 0 8M");
            }
            foreach (var step in (string[][])[["+4M"], ["--shrink", "5M"], ["--shrink", "--", "-1M"], ["6M"]])
            {
                var r = await ImageTool.OursAsync(["resize", "-f", format, ours, .. step]);
                var q = await ImageTool.QemuAsync(["resize", "-f", format, peer, .. step]);
                Assert.True(r.ExitCode == q.ExitCode, $"{string.Join(' ', step)}: ours {r.ExitCode} {r.Stderr}, theirs {q.ExitCode} {q.Stderr}");
                await ImageTool.AssertSameContentAsync(peer, ours);
            }
            if (format == "qcow2")
            {
                await ImageTool.AssertCleanAsync(ours);
            }
            var shrink = await ImageTool.OursAsync("resize", "-f", format, ours, "1M");
            Assert.Equal(1, shrink.ExitCode);
            Assert.Contains("--shrink", shrink.Stderr);
        }
    }

    [RequiresToolsFact("qemu-img", "qemu-io")]
    public async Task Snapshots_are_taken_listed_applied_and_deleted()
    {
        using var dir = new TempDir();
        var image = dir.File("s.qcow2");
        await ImageTool.QemuOkAsync("create", "-q", "-f", "qcow2", image, "8M");
        await ImageTool.IoAsync(image, "qcow2", "write -P 1 0 1M");
        await ImageTool.OursOkAsync("snapshot", "-c", "one", image);
        await ImageTool.IoAsync(image, "qcow2", "write -P 2 0 1M");
        await ImageTool.QemuOkAsync("snapshot", "-c", "two", image);
        Assert.Equal(await ImageTool.QemuOkAsync("snapshot", "-l", image), await ImageTool.OursOkAsync("snapshot", "-l", image));

        await ImageTool.OursOkAsync("snapshot", "-a", "one", image);
        await ImageTool.IoAsync(image, "qcow2", "read -P 1 0 1M");
        await ImageTool.OursOkAsync("snapshot", "-d", "one", image);
        await ImageTool.AssertCleanAsync(image);
        var left = await ImageTool.QemuOkAsync("snapshot", "-l", image);
        Assert.DoesNotContain(" one ", left);
        Assert.Contains(" two ", left);
        await ImageTool.QemuOkAsync("snapshot", "-a", "two", image);
        await ImageTool.IoAsync(image, "qcow2", "read -P 2 0 1M");

        var missing = await ImageTool.OursAsync("snapshot", "-d", "nope", image);
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("nope", missing.Stderr);
        var raw = ImageTool.RawWith(dir.File("r.raw"), 1 << 20, 1);
        Assert.Equal(0, (await ImageTool.OursAsync("snapshot", "-l", raw)).ExitCode);
        Assert.Equal(1, (await ImageTool.OursAsync("snapshot", "-c", "x", raw)).ExitCode);
        Assert.Equal(2, (await ImageTool.OursAsync("snapshot", "-c", "x", "-d", "y", image)).ExitCode);
    }

    [RequiresToolsFact("qemu-img", "qemu-io", "qemu-nbd", "nbdinfo")]
    public async Task Bitmap_operations_match_the_reference_tool()
    {
        using var dir = new TempDir();
        var results = new List<string>();
        foreach (var tool in (string[])["ours", "peer"])
        {
            var image = dir.File(tool + ".qcow2");
            var other = dir.File(tool + "-other.qcow2");
            foreach (var i in (string[])[image, other])
            {
                await ImageTool.QemuOkAsync("create", "-q", "-f", "qcow2", i, "16M");
            }
            Task<Run.Result> Bitmap(params string[] args) => tool == "ours"
                ? ImageTool.OursAsync(["bitmap", .. args])
                : ImageTool.QemuAsync(["bitmap", .. args]);
            Assert.Equal(0, (await Bitmap("--add", "-g", "128k", image, "a")).ExitCode);
            Assert.Equal(0, (await Bitmap("--add", image, "b", "--disable")).ExitCode);
            await ImageTool.QemuOkAsync("bitmap", "--add", other, "x");
            await ImageTool.IoAsync(image, "qcow2", "write 1M 64k");
            await ImageTool.IoAsync(other, "qcow2", "write 8M 64k");
            Assert.Equal(0, (await Bitmap("--merge", "a", image, "b")).ExitCode);
            Assert.Equal(0, (await Bitmap("--merge", "x", "-b", other, "-F", "qcow2", image, "b")).ExitCode);
            Assert.Equal(0, (await Bitmap("--clear", "--disable", image, "a")).ExitCode);
            Assert.Equal(0, (await Bitmap("--add", image, "gone", "--remove")).ExitCode);
            Assert.Equal(1, (await Bitmap("--remove", image, "gone")).ExitCode);
            await ImageTool.AssertCleanAsync(image);
            var info = JsonDocument.Parse(await ImageTool.QemuOkAsync("info", "--output=json", image)).RootElement;
            results.Add(info.GetProperty("format-specific").GetRawText());
            foreach (var name in (string[])["a", "b"])
            {
                await using var served = await ServedImage.QemuNbdAsync(dir.File($"{tool}{name}.sock"), "-t", "-r", "-f", "qcow2", "-B", name, image);
                results.Add((await Run.ToEndAsync("nbdinfo", ["--map=qemu:dirty-bitmap:" + name, served.Uri()])).Ok("nbdinfo").Stdout);
            }
        }
        Assert.Equal(results[3], results[0]);
        Assert.Equal(results[4], results[1]);
        Assert.Equal(results[5], results[2]);
        Assert.Contains("dirty", results[2]);
    }

    [RequiresToolsFact("qemu-img", "qemu-io")]
    public async Task Amend_changes_compat_and_lazy_refcounts()
    {
        using var dir = new TempDir();
        var image = dir.File("a.qcow2");
        await ImageTool.QemuOkAsync("create", "-q", "-f", "qcow2", image, "8M");
        await ImageTool.IoAsync(image, "qcow2", "write -P 1 0 1M");
        await ImageTool.OursOkAsync("amend", "-o", "lazy_refcounts=on", image);
        Assert.Contains("lazy refcounts: true", await ImageTool.QemuOkAsync("info", image));
        await ImageTool.OursOkAsync("amend", "-o", "lazy_refcounts=off,compat=0.10", image);
        var v2 = await ImageTool.QemuOkAsync("info", image);
        Assert.Contains("compat: 0.10", v2);
        await ImageTool.AssertCleanAsync(image);
        await ImageTool.OursOkAsync("amend", "-o", "compat=1.1,refcount_bits=4", image);
        var v3 = await ImageTool.QemuOkAsync("info", image);
        Assert.Contains("compat: 1.1", v3);
        Assert.Contains("refcount bits: 4", v3);
        await ImageTool.AssertCleanAsync(image);
        await ImageTool.IoAsync(image, "qcow2", "read -P 1 0 1M");

        var creationOnly = await ImageTool.OursAsync("amend", "-o", "cluster_size=4k", image);
        Assert.Equal(1, creationOnly.ExitCode);
        Assert.Equal(1, (await ImageTool.QemuAsync("amend", "-o", "cluster_size=4k", image)).ExitCode);
        Assert.Equal(1, (await ImageTool.OursAsync("amend", "-o", "lazy_refcounts=on", ImageTool.RawWith(dir.File("r.raw"), 4096, 1))).ExitCode);
    }
}
