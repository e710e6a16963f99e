using System.Text.Json;

namespace Blockshot.Interop.Tests;

/// <summary>
/// The write matrix through the NBD export: fio (verifying) and a qemu-io write/zero/trim/flush mix
/// through <c>blockshot serve</c>, on qcow2 images made by <c>blockshot image create</c> and by qemu-img.
/// The same qemu-io mix runs on a raw reference file. Afterwards qemu-img check finds nothing, qemu-img
/// compare finds the image equal to the reference, and both info commands agree on every common field.
/// </summary>
public class ServeQcow2WriteMatrixTests
{
    private const long Size = 48 << 20;

    public static TheoryData<string, string, int> Images()
    {
        var data = new TheoryData<string, string, int>
        {
            { "ours", "", 1 },
            { "ours", "cluster_size=4k,refcount_bits=2", 2 },
            { "qemu", "extended_l2=on,cluster_size=128k", 3 },
            { "qemu", "compat=0.10,cluster_size=16k", 4 },
        };
        if (ImageTool.Long)
        {
            data.Add("ours", "extended_l2=on,cluster_size=32k", 5);
            data.Add("ours", "compat=0.10,cluster_size=512", 6);
            data.Add("ours", "cluster_size=2M,refcount_bits=64", 7);
            data.Add("qemu", "", 8);
            data.Add("qemu", "cluster_size=1k,refcount_bits=8", 9);
            data.Add("qemu", "lazy_refcounts=on", 10);
        }
        return data;
    }

    [RequiresToolsTheory("fio", "qemu-img", "qemu-io")]
    [MemberData(nameof(Images))]
    public async Task Fio_and_a_random_mix_through_the_export_check_clean_and_match_the_model(string maker, string options, int seed)
    {
        using var dir = new TempDir();
        var image = dir.File("img.qcow2");
        var reference = dir.File("ref.raw");
        var create = new List<string> { "create", "-q", "-f", "qcow2" };
        if (options.Length > 0)
        {
            create.AddRange(["-o", options]);
        }
        create.AddRange([image, Size.ToString()]);
        if (maker == "ours")
        {
            await ImageTool.OursOkAsync([.. create]);
        }
        else
        {
            await ImageTool.QemuOkAsync([.. create]);
            // A peer-written image: data, zero clusters and discards already in it.
            await ImageTool.IoAsync(image, "qcow2", MixScript(seed + 100, ClusterSize(options), count: 30, flushes: false));
        }
        await ImageTool.QemuOkAsync("convert", "-f", "qcow2", "-O", "raw", image, reference);

        var served = await ServedImage.BlockshotAsync(dir.File("s.sock"), image, "--name", "disk");
        await using (served)
        {
            var fio = await Run.ToEndAsync("fio", [
                "--name=matrix", "--ioengine=nbd", "--uri=" + served.Uri("disk"), "--rw=randwrite", "--bsrange=512-96k",
                "--iodepth=16", "--offset=8M", "--size=24M", "--verify=crc32c", "--do_verify=1", "--verify_fatal=1",
                "--randseed=" + seed, "--output-format=json"], TimeSpan.FromMinutes(5));
            fio.Ok("fio verify through the export");
            var job = JsonDocument.Parse(fio.Stdout[fio.Stdout.IndexOf('{', StringComparison.Ordinal)..]).RootElement.GetProperty("jobs")[0];
            Assert.Equal(0, job.GetProperty("error").GetInt32());

            // fio verified its data through the export; take that region into the reference as read by
            // the peer, so the final comparison shows it also reached the image file intact.
            var fioRegion = dir.File("fio.raw");
            await ImageTool.QemuOkAsync("convert", "-f", "raw", "-O", "raw", served.Uri("disk"), fioRegion);
            using (var from = File.OpenRead(fioRegion))
            using (var to = File.OpenWrite(reference))
            {
                var buffer = new byte[24 << 20];
                from.Position = 8 << 20;
                from.ReadExactly(buffer);
                to.Position = 8 << 20;
                to.Write(buffer);
            }
            File.Delete(fioRegion);

            var script = MixScript(seed, ClusterSize(options), count: 80, flushes: true);
            var nbd = await Run.ToEndAsync("qemu-io", ["-f", "raw", .. script.SelectMany(c => new[] { "-c", c }), served.Uri("disk")]);
            nbd.Ok("qemu-io through the export");
            Assert.DoesNotContain("failed", nbd.Stdout + nbd.Stderr, StringComparison.OrdinalIgnoreCase);
            await ImageTool.IoAsync(reference, "raw", script);

            var (code, stderr) = await served.TerminateAsync();
            Assert.True(code == 0, $"serve exited {code}: {stderr}");
        }

        var check = await ImageTool.QemuAsync("check", image);
        Assert.True(check.ExitCode == 0, $"qemu-img check exited {check.ExitCode}: {check.Stdout}{check.Stderr}");
        Assert.Contains("No errors were found", check.Stdout);
        var compare = await ImageTool.QemuAsync("compare", "-f", "qcow2", "-F", "raw", image, reference);
        Assert.True(compare.ExitCode == 0, $"qemu-img compare exited {compare.ExitCode}: {compare.Stdout}{compare.Stderr}");
        var ours = JsonDocument.Parse(await ImageTool.OursOkAsync("info", "--output=json", image)).RootElement;
        var theirs = JsonDocument.Parse(await ImageTool.QemuOkAsync("info", "--output=json", image)).RootElement;
        var diffs = ImageTool.CommonFieldDifferences(ours, theirs);
        Assert.True(diffs.Count == 0, string.Join("\n", diffs));
        Assert.True(ImageTool.CommonFieldCount(ours, theirs) >= 12, "too few fields in common: " + ours.GetRawText());
    }

    private static int ClusterSize(string options)
    {
        foreach (var part in options.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part.StartsWith("cluster_size=", StringComparison.Ordinal))
            {
                var text = part["cluster_size=".Length..];
                var scale = text[^1] switch { 'k' => 1024, 'M' => 1 << 20, _ => 1 };
                return int.Parse(scale == 1 ? text : text[..^1]) * scale;
            }
        }
        return 64 << 10;
    }

    /// <summary>
    /// qemu-io commands: pattern writes (often unaligned), write-zeroes, discards of whole clusters (a
    /// partial trim may leave data, so the reference could not predict it) and flushes.
    /// </summary>
    private static string[] MixScript(int seed, int cluster, int count, bool flushes)
    {
        var rng = new Random(seed);
        var commands = new List<string>();
        for (var i = 0; i < count; i++)
        {
            var kind = rng.Next(10);
            if (kind < 6)
            {
                var length = rng.Next(3) switch { 0 => rng.Next(1, 700), 1 => 4096 * rng.Next(1, 16), _ => rng.Next(1, 400_000) };
                var offset = rng.NextInt64(0, Size - length);
                commands.Add($"write -P {rng.Next(1, 255)} {offset} {length}");
            }
            else if (kind < 8)
            {
                var length = rng.Next(1, 300_000);
                commands.Add($"write -z {rng.NextInt64(0, Size - length)} {length}");
            }
            else if (kind < 9 || !flushes)
            {
                var clusters = rng.Next(1, Math.Max(2, (1 << 20) / cluster));
                var first = rng.NextInt64(0, Size / cluster - clusters);
                commands.Add($"discard {first * cluster} {(long)clusters * cluster}");
            }
            else
            {
                commands.Add("flush");
            }
        }
        return [.. commands];
    }
}
