using System.Text.Json;

namespace Blockshot.Daemon.Interop.Tests;

/// <summary>fio's nbd engine as the peer client that does verified I/O.</summary>
public static class Fio
{
    /// <summary>The arguments of a random-write job that verifies what it wrote as it goes (and on a second pass).</summary>
    public static string[] VerifyingWrites(string uri, string name, long size, int runtimeSeconds, int loops = 1000, string? rate = null)
    {
        var args = new List<string>
        {
            $"--name={name}", "--ioengine=nbd", $"--uri={uri}", "--rw=randwrite", "--bs=4k", "--iodepth=16",
            $"--size={size}", $"--loops={loops}", $"--runtime={runtimeSeconds}", "--verify=crc32c", "--verify_backlog=64",
            "--verify_fatal=1", "--output-format=json",
        };
        if (rate is not null)
        {
            args.Add($"--rate={rate}");
        }
        return [.. args];
    }

    /// <summary>Checks fio's exit status and JSON: no error, some I/O done. Returns the job object.</summary>
    public static JsonElement Check(Run.Result result, string what)
    {
        result.Ok(what);
        var json = result.Stdout[result.Stdout.IndexOf('{', StringComparison.Ordinal)..];
        using var doc = JsonDocument.Parse(json);
        var job = doc.RootElement.GetProperty("jobs")[0].Clone();
        Assert.True(job.GetProperty("error").GetInt32() == 0, $"{what}: fio reported error {job.GetProperty("error")}: {result.Stderr}");
        Assert.True(job.GetProperty("write").GetProperty("io_bytes").GetInt64() + job.GetProperty("read").GetProperty("io_bytes").GetInt64() > 0,
            $"{what}: fio did no I/O");
        return job;
    }
}
