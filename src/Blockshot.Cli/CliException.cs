namespace Blockshot.Cli;

/// <summary>A failure with a message for the user and the exit code that goes with it.</summary>
internal sealed class CliException(string message, int exitCode, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>The process exit code.</summary>
    public int ExitCode { get; } = exitCode;
}
