using System.Diagnostics;

namespace Blockshot.Daemon.Interop.Tests;

/// <summary>Runs commands to completion with output captured.</summary>
public static class Run
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public Result Ok(string what)
        {
            if (ExitCode != 0)
            {
                throw new Xunit.Sdk.XunitException($"{what} exited {ExitCode}\nstdout: {Stdout}\nstderr: {Stderr}");
            }
            return this;
        }
    }

    public static ProcessStartInfo Info(string tool, IEnumerable<string> args, IDictionary<string, string>? environment = null)
    {
        var psi = new ProcessStartInfo(tool.Contains('/') ? tool : Tools.Require(tool))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        psi.Environment["PATH"] = "/usr/bin:/usr/sbin:/bin:/sbin:" + Environment.GetEnvironmentVariable("PATH");
        psi.Environment.Remove("BLOCKSHOT_CONTROL");
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            psi.Environment[key] = value;
        }
        return psi;
    }

    public static async Task<Result> ToEndAsync(string tool, IEnumerable<string> args, TimeSpan? timeout = null, IDictionary<string, string>? environment = null)
    {
        using var process = Process.Start(Info(tool, args, environment))!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(3));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{tool} {string.Join(' ', args)} did not finish in time; stderr so far: {(stderr.IsCompleted ? await stderr : "")}");
        }
        return new Result(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Runs <c>./blockshot ARGS</c>.</summary>
    public static Task<Result> BlockshotAsync(params string[] args) => ToEndAsync(Repo.Launcher, args);
}
