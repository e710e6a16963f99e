namespace Blockshot.Daemon.Config;

/// <summary>The configuration file is wrong; every error names its place in the file (<c>$.devices[0].file: …</c>).</summary>
public sealed class ConfigException : Exception
{
    /// <summary>Creates the exception from its errors.</summary>
    public ConfigException(string file, IReadOnlyList<string> errors, int controlCode = 0)
        : base($"{file}: {errors.Count} error(s) in the configuration:{Environment.NewLine}  {string.Join(Environment.NewLine + "  ", errors)}")
    {
        File = file;
        Errors = errors;
        ControlCode = controlCode;
    }

    /// <summary>The configuration file.</summary>
    public string File { get; }

    /// <summary>Each error, prefixed with its JSON path.</summary>
    public IReadOnlyList<string> Errors { get; }

    /// <summary>For an error applying the file (an image missing or locked), the control error code behind it; 0 for a malformed file.</summary>
    public int ControlCode { get; }
}
