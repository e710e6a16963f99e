using System.CommandLine;
using Blockshot.Daemon;

namespace Blockshot.Cli.Client;

/// <summary>
/// The options of the commands that talk to the daemon: where it is and how to print. They are
/// accepted before the command (<c>blockshot --control S -o json device list</c>) and anywhere inside
/// the client command groups, but not by the local tools (<c>image</c>, <c>serve</c>, <c>demo</c>), whose
/// own <c>-o</c> means something else.
/// </summary>
internal static class ClientOptions
{
    /// <summary>The environment variable that names the control socket when <c>--control</c> does not.</summary>
    public const string ControlVariable = "BLOCKSHOT_CONTROL";

    private const string ControlDescription = $"Daemon control socket (default: ${ControlVariable}, else {DaemonOptions.DefaultControlPath})";

    private const string OutputDescription = "Output format: text (tables, progress bars) or json ('cbt map' also takes ranges: OFFSET:LENGTH lines, as text)";

    // Before the command name: on the root only.
    private static readonly Option<string?> LeadingControl = new("--control") { Description = ControlDescription };
    private static readonly Option<string?> LeadingOutput = CreateOutput(recursive: false);

    // Inside a client command group: recursive from the group down.
    private static readonly Option<string?> Control = new("--control") { Description = ControlDescription, Recursive = true };
    private static readonly Option<string?> Output = CreateOutput(recursive: true);

    /// <summary>Adds the leading options to the root command.</summary>
    public static void AddTo(RootCommand root)
    {
        root.Options.Add(LeadingControl);
        root.Options.Add(LeadingOutput);
    }

    /// <summary>Adds the options to a command group that talks to the daemon.</summary>
    public static Command AddToClient(Command group)
    {
        group.Options.Add(Control);
        group.Options.Add(Output);
        return group;
    }

    /// <summary>Adds <c>--control</c> alone (the daemon's own command, where it says where to listen).</summary>
    public static Command AddControlTo(Command command)
    {
        command.Options.Add(Control);
        return command;
    }

    /// <summary>The <c>--control</c> given on the command line, wherever it was placed, or null.</summary>
    public static string? GivenControl(ParseResult parse) =>
        parse.GetValue(Control) is { Length: > 0 } inner ? inner
        : parse.GetValue(LeadingControl) is { Length: > 0 } leading ? leading
        : null;

    /// <summary>The control socket: <c>--control</c>, else <c>$BLOCKSHOT_CONTROL</c>, else the default.</summary>
    public static string ControlPath(ParseResult parse)
    {
        var path = GivenControl(parse);
        if (string.IsNullOrEmpty(path))
        {
            path = Environment.GetEnvironmentVariable(ControlVariable);
        }
        return Path.GetFullPath(string.IsNullOrEmpty(path) ? DaemonOptions.DefaultControlPath : path);
    }

    /// <summary>True for <c>--output json</c>.</summary>
    public static bool Json(ParseResult parse) => (parse.GetValue(Output) ?? parse.GetValue(LeadingOutput)) == "json";

    private static Option<string?> CreateOutput(bool recursive)
    {
        var option = new Option<string?>("--output", "-o") { Description = OutputDescription + " [default: text]", Recursive = recursive };
        option.AcceptOnlyFromAmong("text", "json", "ranges");
        return option;
    }
}
