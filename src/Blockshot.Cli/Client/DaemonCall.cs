using System.CommandLine;
using Blockshot.Daemon.Protocol;

namespace Blockshot.Cli.Client;

/// <summary>
/// Runs a client command: connects to the daemon, runs the body, and turns failures into messages and
/// exit codes (daemon not reachable: 7; the daemon's error codes mapped as docs/cli.md lists).
/// </summary>
internal static class DaemonCall
{
    public static Func<ParseResult, CancellationToken, Task<int>> Action(Func<ParseResult, ControlClient, CancellationToken, Task<int>> body) =>
        CommandRunner.Guard(async (parse, ct) =>
        {
            var path = ClientOptions.ControlPath(parse);
            try
            {
                await using var client = await ControlClient.ConnectAsync(path, ct).ConfigureAwait(false);
                return await body(parse, client, ct).ConfigureAwait(false);
            }
            catch (ControlUnreachableException e)
            {
                throw new CliException(e.Message, ExitCodes.DaemonUnreachable, e);
            }
            catch (ControlException e)
            {
                throw new CliException(e.Message, ExitCodeOf(e.Code), e);
            }
        });

    /// <summary>The exit code for a daemon error code.</summary>
    public static int ExitCodeOf(int code) => code switch
    {
        ControlErrorCodes.InvalidParams or ControlErrorCodes.InvalidRequest or ControlErrorCodes.MethodNotFound => ExitCodes.Usage,
        ControlErrorCodes.NotFound => ExitCodes.NotFound,
        ControlErrorCodes.Locked => ExitCodes.Locked,
        ControlErrorCodes.PermissionDenied => ExitCodes.PermissionDenied,
        ControlErrorCodes.BadImage => ExitCodes.BadImage,
        _ => ExitCodes.Failure,
    };
}
