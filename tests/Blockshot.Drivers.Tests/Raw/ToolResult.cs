namespace Blockshot.Drivers.Tests.Raw;

/// <summary>The outcome of running an external tool.</summary>
public sealed record ToolResult(int ExitCode, string Stdout, string Stderr)
{
    public string Output => $"exit {ExitCode}\nstdout: {Stdout}\nstderr: {Stderr}";
}
