using System.Diagnostics;

namespace Blockshot.Interop.Tests;

/// <summary>Runs commands to completion, or starts long-running ones, with output captured.</summary>
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

    public static ProcessStartInfo Info(string tool, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(tool.Contains('/') ? tool : Tools.Require(tool))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        psi.Environment["PATH"] = "/usr/bin:/usr/sbin:/bin:/sbin:" + Environment.GetEnvironmentVariable("PATH");
        return psi;
    }

    public static async Task<Result> ToEndAsync(string tool, IEnumerable<string> args, TimeSpan? timeout = null)
    {
        using var process = Process.Start(Info(tool, args))!;
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
            throw new TimeoutException($"{tool} {string.Join(' ', args)} did not finish in time");
        }
        return new Result(process.ExitCode, await stdout, await stderr);
    }

    public static Task<Result> BlockshotAsync(params string[] args) => ToEndAsync(Repo.Launcher, args);
}
