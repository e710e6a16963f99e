using System.Diagnostics;

namespace Blockshot.Nbd.Tests;

/// <summary>Runs external tools with a timeout and captures their output.</summary>
public static class ProcessRunner
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public Result EnsureSuccess(string what)
        {
            if (ExitCode != 0)
            {
                throw new Xunit.Sdk.XunitException($"{what} exited {ExitCode}\nstdout: {Stdout}\nstderr: {Stderr}");
            }
            return this;
        }
    }

    public static async Task<Result> RunAsync(string tool, IEnumerable<string> args, TimeSpan? timeout = null, IDictionary<string, string>? env = null, string? stdin = null)
    {
        var psi = new ProcessStartInfo(Tools.Require(tool))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        // libnbd's Python bindings live in the system interpreter.
        psi.Environment["PATH"] = "/usr/bin:/usr/sbin:/bin:/sbin:" + Environment.GetEnvironmentVariable("PATH");
        if (env is not null)
        {
            foreach (var (k, v) in env)
            {
                psi.Environment[k] = v;
            }
        }
        using var process = Process.Start(psi)!;
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
            process.StandardInput.Close();
        }
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(120));
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
}
