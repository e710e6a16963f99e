using System.CommandLine;

namespace Blockshot.Cli;

/// <summary>Parses, reports usage errors with exit code 2, runs the action and maps failures to exit codes.</summary>
internal static class CommandRunner
{
    public static async Task<int> RunAsync(RootCommand root, string[] args)
    {
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors)
            {
                await Console.Error.WriteLineAsync($"blockshot: {error.Message}").ConfigureAwait(false);
            }
            var name = parse.CommandResult.Command is RootCommand ? "blockshot" : $"blockshot {parse.CommandResult.Command.Name}";
            await Console.Error.WriteLineAsync($"Try '{name} --help' for more information.").ConfigureAwait(false);
            return ExitCodes.Usage;
        }
        try
        {
            // Commands handle SIGINT/SIGTERM themselves (serve and daemon drain for longer than a default
            // termination timeout would allow).
            return await parse.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null }).ConfigureAwait(false);
        }
        catch (CliException e)
        {
            await Console.Error.WriteLineAsync($"blockshot: {e.Message}").ConfigureAwait(false);
            return e.ExitCode;
        }
    }

    /// <summary>Wraps an action so a <see cref="CliException"/> becomes a message and its exit code.</summary>
    public static Func<ParseResult, CancellationToken, Task<int>> Guard(Func<ParseResult, CancellationToken, Task<int>> action) =>
        async (parse, ct) =>
        {
            try
            {
                return await action(parse, ct).ConfigureAwait(false);
            }
            catch (CliException e)
            {
                await Console.Error.WriteLineAsync($"blockshot: {e.Message}").ConfigureAwait(false);
                return e.ExitCode;
            }
        };
}
