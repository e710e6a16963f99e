using System.CommandLine;

namespace Blockshot.Cli.Commands.Image;

/// <summary>The arguments and options the image subcommands share, spelled as the reference tool spells them.</summary>
internal static class ImageArgs
{
    /// <summary>An image path argument.</summary>
    public static Argument<string> File(string name = "FILE", string description = "Image file") =>
        WithPathCheck(new Argument<string>(name) { Description = description });

    /// <summary><c>-f raw|qcow2</c>: the image format (detected when omitted).</summary>
    public static Option<string?> Format(string name = "--format", string alias = "-f", string what = "Image format: raw or qcow2 (detected when omitted)")
    {
        var option = new Option<string?>(name, alias) { Description = what };
        option.AcceptOnlyFromAmong(ImageOpener.Formats);
        return option;
    }

    /// <summary><c>-U</c>: do not take the image locks.</summary>
    public static Option<bool> ForceShare() =>
        new("--force-share", "-U") { Description = "Do not lock the image (read it while another process uses it)" };

    /// <summary><c>-q</c>: no output except errors.</summary>
    public static Option<bool> Quiet() => new("--quiet", "-q") { Description = "Print nothing except errors" };

    /// <summary><c>-p</c>: show progress.</summary>
    public static Option<bool> Progress() => new("--progress", "-p") { Description = "Show progress" };

    /// <summary><c>--output human|json</c>.</summary>
    public static Option<string> Output()
    {
        var option = new Option<string>("--output") { Description = "Output format: human or json", DefaultValueFactory = _ => "human" };
        option.AcceptOnlyFromAmong("human", "json");
        return option;
    }

    /// <summary><c>-o name=value,...</c> format options (repeatable).</summary>
    public static Option<string[]> FormatOptions(string description = "Format options, name=value[,name=value...] (repeatable)") =>
        new("--options", "-o") { Description = description };

    /// <summary>Refuses a path that looks like a mistyped option.</summary>
    public static Argument<string> WithPathCheck(Argument<string> argument)
    {
        argument.Validators.Add(CliValidation.NotAnOption);
        return argument;
    }
}
