using System.CommandLine;
using Blockshot.Daemon;

namespace Blockshot.Cli.Client;

/// <summary>The global options of the commands that talk to the daemon: where it is and how to print.</summary>
internal static class ClientOptions
{
    /// <summary>The environment variable that names the control socket when <c>--control</c> does not.</summary>
    public const string ControlVariable = "BLOCKSHOT_CONTROL";

    public static readonly Option<string?> Control = new("--control")
    {
        Description = $"Daemon control socket (default: ${ControlVariable}, else {DaemonOptions.DefaultControlPath})",
        Recursive = true,
    };

    public static readonly Option<string> Output = CreateOutput();

    /// <summary>Adds the global options to the root command.</summary>
    public static void AddTo(RootCommand root)
    {
        root.Options.Add(Control);
        root.Options.Add(Output);
    }

    /// <summary>The control socket: <c>--control</c>, else <c>$BLOCKSHOT_CONTROL</c>, else the default.</summary>
    public static string ControlPath(ParseResult parse)
    {
        var path = parse.GetValue(Control);
        if (string.IsNullOrEmpty(path))
        {
            path = Environment.GetEnvironmentVariable(ControlVariable);
        }
        return Path.GetFullPath(string.IsNullOrEmpty(path) ? DaemonOptions.DefaultControlPath : path);
    }

    /// <summary>True for <c>--output json</c>.</summary>
    public static bool Json(ParseResult parse) => parse.GetValue(Output) == "json";

    private static Option<string> CreateOutput()
    {
        var option = new Option<string>("--output", "-o")
        {
            Description = "Output format of client commands: text (tables, progress bars) or json ('cbt map' also takes ranges: OFFSET:LENGTH lines, as text)",
            Recursive = true,
            DefaultValueFactory = _ => "text",
        };
        option.AcceptOnlyFromAmong("text", "json", "ranges");
        return option;
    }
}
