using Microsoft.Extensions.Logging;

namespace Blockshot.Cli;

/// <summary>Structured log lines to stderr; stdout stays free for command output.</summary>
internal static class Logging
{
    /// <summary>A logger factory writing one line per event to stderr.</summary>
    public static ILoggerFactory Create(bool verbose) => LoggerFactory.Create(builder =>
    {
        builder.SetMinimumLevel(verbose ? LogLevel.Debug : LogLevel.Warning);
        builder.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fff ";
            o.UseUtcTimestamp = true;
        });
        builder.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
    });
}
