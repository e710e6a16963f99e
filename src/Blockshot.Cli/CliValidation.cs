using System.CommandLine.Parsing;

namespace Blockshot.Cli;

/// <summary>Checks shared by several commands.</summary>
internal static class CliValidation
{
    /// <summary>Refuses a path argument that looks like a mistyped option.</summary>
    public static void NotAnOption(ArgumentResult result)
    {
        foreach (var token in result.Tokens)
        {
            if (token.Value.StartsWith('-') && token.Value.Length > 1)
            {
                result.AddError($"unknown option '{token.Value}' (to name a file that starts with '-', write ./{token.Value})");
            }
        }
    }
}
