using System.Diagnostics;
using System.Text.Json;

namespace Blockshot.Qcow2.Tests;

/// <summary>Runs the peer tools (qemu-img, qemu-io) and captures their output.</summary>
internal static class Qemu
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public string All => Stdout + Stderr;
    }

    /// <summary>
    /// Runs a tool to the end. A lock refusal is retried a few times: an image this process just closed
    /// can stay locked for a moment while a child process started by a parallel test still carries its
    /// descriptor (between that child's fork and exec).
    /// </summary>
    public static Result Run(string tool, params string[] args)
    {
        for (var attempt = 1; ; attempt++)
        {
            var r = RunOnce(tool, args);
            if (r.ExitCode == 0 || attempt == 4 || !r.Stderr.Contains("lock", StringComparison.Ordinal)
                || !r.Stderr.Contains("Failed to get", StringComparison.Ordinal))
            {
                return r;
            }
            Thread.Sleep(100);
        }
    }

    private static Result RunOnce(string tool, string[] args)
    {
        var psi = new ProcessStartInfo(Tools.Require(tool))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{tool} {string.Join(' ', args)} timed out");
        }
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Runs a tool and fails the test when it exits non-zero.</summary>
    public static string Ok(string tool, params string[] args)
    {
        var r = Run(tool, args);
        if (r.ExitCode != 0)
        {
            throw new Xunit.Sdk.XunitException($"{tool} {string.Join(' ', args)} failed ({r.ExitCode}): {r.All}");
        }
        return r.Stdout;
    }

    public static string Img(params string[] args) => Ok("qemu-img", args);

    /// <summary>Runs qemu-io commands on an image (each -c in order).</summary>
    public static string Io(string image, params string[] commands)
    {
        var args = new List<string> { "-f", "qcow2" };
        foreach (var c in commands)
        {
            args.Add("-c");
            args.Add(c);
        }
        args.Add(image);
        var r = Run("qemu-io", [.. args]);
        if (r.ExitCode != 0 || r.All.Contains("failed", StringComparison.Ordinal))
        {
            throw new Xunit.Sdk.XunitException($"qemu-io {string.Join(' ', args)} failed ({r.ExitCode}): {r.All}");
        }
        return r.Stdout;
    }

    public static JsonElement InfoJson(string image)
    {
        var json = Img("info", "--output=json", image);
        return JsonDocument.Parse(json).RootElement.Clone();
    }

    /// <summary>qemu-img check; returns the exit code and the JSON report.</summary>
    public static (int ExitCode, JsonElement Report, string Text) Check(string image, string? repair = null)
    {
        var args = new List<string> { "check", "--output=json" };
        if (repair is not null)
        {
            args.Add("-r");
            args.Add(repair);
        }
        args.Add(image);
        var r = Run("qemu-img", [.. args]);
        JsonElement report = default;
        try
        {
            report = JsonDocument.Parse(r.Stdout).RootElement.Clone();
        }
        catch (JsonException)
        {
        }
        return (r.ExitCode, report, r.All);
    }

    /// <summary>Converts an image to raw and returns the bytes.</summary>
    public static byte[] ToRaw(string image, string dir)
    {
        var raw = Path.Combine(dir, Path.GetFileName(image) + $".{Guid.NewGuid():N}.raw");
        Img("convert", "-O", "raw", image, raw);
        var bytes = File.ReadAllBytes(raw);
        File.Delete(raw);
        return bytes;
    }
}
