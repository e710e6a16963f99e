using System.Diagnostics;

namespace Blockshot.Drivers.Tests.Raw;

/// <summary>Runs external tools (qemu-img, qemu-io, losetup, mount…) with a timeout.</summary>
public static class ToolRun
{
    public static async Task<ToolResult> RunAsync(string tool, params string[] args)
    {
        using var process = Start(tool, args);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{tool} {string.Join(' ', args)} did not finish in 30 s");
        }
        return new ToolResult(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Runs a tool and fails the test unless it exits 0; returns its standard output.</summary>
    public static async Task<string> CheckAsync(string tool, params string[] args)
    {
        var result = await RunAsync(tool, args);
        Assert.True(result.ExitCode == 0, $"{tool} {string.Join(' ', args)} failed: {result.Output}");
        return result.Stdout;
    }

    /// <summary>Starts a tool with redirected output; the caller owns the process.</summary>
    public static Process Start(string tool, params string[] args)
    {
        var info = new ProcessStartInfo(Tools.Require(tool))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        return Process.Start(info) ?? throw new InvalidOperationException($"could not start {tool}");
    }
}
