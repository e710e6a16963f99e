using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Blockshot.Cli.Client;
using Blockshot.Daemon;
using Blockshot.Daemon.Config;
using Blockshot.Daemon.Protocol;
using Microsoft.Extensions.Logging;

namespace Blockshot.Cli.Commands;

/// <summary>
/// <c>blockshot daemon</c>: run the daemon in the foreground. Logs go to stderr; SIGTERM and SIGINT
/// stop it cleanly (stop accepting, drain, flush, close).
/// </summary>
internal static class DaemonCommand
{
    public static Command Create()
    {
        var config = new Option<string?>("--config", "-c") { Description = "Declarative JSON configuration applied at start (devices, exports, filters)" };
        var nbdSocket = new Option<string?>("--nbd-socket") { Description = "Serve NBD on this Unix socket (default: nbd.sock beside the control socket)" };
        var nbdPort = new Option<int?>("--nbd-port") { Description = "Serve NBD on this TCP port instead" };
        var nbdBind = new Option<string>("--nbd-bind") { Description = "TCP address for --nbd-port", DefaultValueFactory = _ => "127.0.0.1" };
        var logFormat = new Option<string>("--log-format") { Description = "Log lines as text or json", DefaultValueFactory = _ => "text" };
        logFormat.AcceptOnlyFromAmong("text", "json");
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Log control connections, requests and NBD connections in detail" };
        var command = new Command("daemon", "Run the Blockshot daemon in the foreground (devices, exports, jobs, control socket)")
        {
            config, nbdSocket, nbdPort, nbdBind, logFormat, verbose,
        };
        command.Validators.Add(result =>
        {
            if (result.GetValue(nbdSocket) is not null && result.GetValue(nbdPort) is not null)
            {
                result.AddError("--nbd-socket and --nbd-port cannot be used together");
            }
            if (result.GetValue(nbdPort) is < 0 or > 65535)
            {
                result.AddError("--nbd-port must be between 0 and 65535");
            }
        });
        nbdBind.Validators.Add(result =>
        {
            var text = result.GetValueOrDefault<string>();
            if (!IPAddress.TryParse(text, out _))
            {
                result.AddError($"--nbd-bind: '{text}' is not an IP address");
            }
        });
        command.SetAction(CommandRunner.Guard(async (parse, ct) =>
        {
            var configPath = parse.GetValue(config);
            DaemonConfig loaded;
            try
            {
                loaded = configPath is null ? DaemonConfig.Empty : ConfigLoader.Load(configPath);
            }
            catch (ConfigException e)
            {
                throw new CliException(e.Message, ExitCodes.Usage, e);
            }
            var control = ClientOptions.GivenControl(parse) is { } flag ? flag
                : loaded.Control ?? (Environment.GetEnvironmentVariable(ClientOptions.ControlVariable) is { Length: > 0 } env ? env : DaemonOptions.DefaultControlPath);
            var options = new DaemonOptions
            {
                ControlPath = Path.GetFullPath(control),
                NbdSocket = parse.GetValue(nbdSocket) is { } s ? Path.GetFullPath(s) : null,
                NbdPort = parse.GetValue(nbdPort),
                NbdBind = parse.GetValue(nbdBind)!,
            };
            return await RunAsync(options, loaded, configPath ?? "configuration", parse.GetValue(logFormat) == "json", parse.GetValue(verbose), ct).ConfigureAwait(false);
        }));
        return command;
    }

    private static async Task<int> RunAsync(DaemonOptions options, DaemonConfig config, string source, bool json, bool verbose, CancellationToken ct)
    {
        using var loggers = CreateLoggers(json, verbose);
        var logger = loggers.CreateLogger("blockshot");
        await using var daemon = new BlockshotDaemon(options, loggers);
        var stop = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c =>
        {
            c.Cancel = true;
            stop.TrySetResult("SIGTERM");
        });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c =>
        {
            c.Cancel = true;
            stop.TrySetResult("SIGINT");
        });
        try
        {
            await daemon.StartAsync(config, source).ConfigureAwait(false);
        }
        catch (ConfigException e)
        {
            throw new CliException(e.Message, e.ControlCode == 0 ? ExitCodes.Usage : DaemonCall.ExitCodeOf(e.ControlCode), e);
        }
        catch (Exception e) when (e is IOException or SocketException or UnauthorizedAccessException)
        {
            throw new CliException($"cannot listen: {e.Message}", e is UnauthorizedAccessException ? ExitCodes.PermissionDenied : ExitCodes.Failure, e);
        }
        catch (ControlException e)
        {
            throw new CliException(e.Message, DaemonCall.ExitCodeOf(e.Code), e);
        }
        await Console.Error.WriteLineAsync(
            $"blockshot: daemon ready: control socket {options.ControlPath}, NBD on {string.Join(", ", daemon.NbdEndpoints)}").ConfigureAwait(false);
        SystemdNotify.Send($"READY=1\nSTATUS=control socket {options.ControlPath}\nMAINPID={Environment.ProcessId}");
        string reason;
        await using (ct.Register(() => stop.TrySetResult("cancelled")))
        {
            reason = await stop.Task.ConfigureAwait(false);
        }
        SystemdNotify.Send("STOPPING=1");
        await daemon.StopAsync(reason).ConfigureAwait(false);
        return ExitCodes.Success;
    }

    private static ILoggerFactory CreateLoggers(bool json, bool verbose) => LoggerFactory.Create(builder =>
    {
        builder.SetMinimumLevel(verbose ? LogLevel.Debug : LogLevel.Information);
        if (json)
        {
            builder.AddJsonConsole(o =>
            {
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
                o.UseUtcTimestamp = true;
            });
        }
        else
        {
            builder.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
                o.UseUtcTimestamp = true;
            });
        }
        builder.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
    });
}
