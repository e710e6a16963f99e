using System.CommandLine;
using Blockshot.Core;
using Blockshot.Drivers;
using Blockshot.Nbd.Client;

namespace Blockshot.Cli.Commands.Image;

/// <summary>
/// Runs an image subcommand, turning what the libraries throw into a message and an exit code: open
/// failures as <see cref="ImageOpener"/> maps them, everything else (a failed operation, an I/O error) 1.
/// </summary>
internal static class ImageErrors
{
    /// <summary>Wraps an action of an image subcommand.</summary>
    public static Func<ParseResult, CancellationToken, Task<int>> Guard(Func<ParseResult, CancellationToken, Task<int>> action) =>
        CommandRunner.Guard(async (parse, ct) =>
        {
            try
            {
                return await action(parse, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (Translate(e) is { } cli)
            {
                throw cli;
            }
        });

    /// <summary>The CLI failure for a library exception, or null to let it through.</summary>
    public static CliException? Translate(Exception e) => e switch
    {
        CliException cli => cli,
        ImageOpenException open => ImageOpener.Translate(open.Path, open),
        BlockException block => new CliException(Strip(block.Message), ExitCodes.Failure, e),
        NbdClientException nbd => new CliException("NBD: " + nbd.Message, ExitCodes.Failure, e),
        IOException io => new CliException(io.Message, ExitCodes.Failure, e),
        UnauthorizedAccessException denied => new CliException(denied.Message, ExitCodes.PermissionDenied, e),
        _ => null,
    };

    /// <summary>A library message without its "qcow2: " prefix.</summary>
    public static string Strip(string message) =>
        message.StartsWith("qcow2: ", StringComparison.Ordinal) ? message[7..] : message;
}
