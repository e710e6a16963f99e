using System.Diagnostics;

namespace Blockshot.Fuse.Tests;

/// <summary>Runs external tools with a deadline, failing the test with their output when they fail.</summary>
internal static class Run
{
    public static async Task<string> ToolAsync(string tool, params string[] args) => await ToolAsync(TimeSpan.FromSeconds(120), tool, args);

    public static async Task<string> ToolAsync(TimeSpan timeout, string tool, params string[] args)
    {
        var (exit, output) = await ExitCodeAsync(timeout, tool, args);
        if (exit != 0)
        {
            throw new Xunit.Sdk.XunitException($"{tool} {string.Join(' ', args)} exited {exit}:\n{output}");
        }
        return output;
    }

    public static async Task<(int Exit, string Output)> ExitCodeAsync(TimeSpan timeout, string tool, params string[] args)
    {
        var start = new ProcessStartInfo(Tools.Require(tool))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            throw new TimeoutException($"{tool} {string.Join(' ', args)} did not finish within {timeout}:\n{await stdout}{await stderr}");
        }
        return (process.ExitCode, await stdout + await stderr);
    }
}
