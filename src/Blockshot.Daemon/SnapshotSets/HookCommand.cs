using System.Diagnostics;
using Blockshot.Daemon.Protocol;

namespace Blockshot.Daemon.SnapshotSets;

/// <summary>A freeze or thaw hook: a shell command that must exit 0 before its timeout.</summary>
internal static class HookCommand
{
    /// <summary>Runs <paramref name="command"/> with <c>/bin/sh -c</c>; cancellation kills it.</summary>
    public static async Task RunAsync(string what, string command, CancellationToken cancellationToken)
    {
        var psi = new ProcessStartInfo("/bin/sh")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(command);
        using var process = Process.Start(psi)
            ?? throw new ControlException(ControlErrorCodes.InvalidState, $"the {what} hook could not be started");
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        try
        {
            await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        await stdout.ConfigureAwait(false);
        var error = (await stderr.ConfigureAwait(false)).Trim();
        if (process.ExitCode != 0)
        {
            throw new ControlException(ControlErrorCodes.InvalidState,
                $"the {what} hook '{command}' exited {process.ExitCode}{(error.Length > 0 ? ": " + error : "")}");
        }
    }
}
