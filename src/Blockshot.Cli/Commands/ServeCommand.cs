using System.CommandLine;
using System.Net;
using System.Runtime.InteropServices;
using Blockshot.Core;
using Blockshot.Nbd;

namespace Blockshot.Cli.Commands;

/// <summary><c>blockshot serve FILE</c>: export one image or device over NBD, shaped like qemu-nbd.</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("FILE") { Description = "Image file or host block device to export" };
        file.Validators.Add(CliValidation.NotAnOption);
        var format = new Option<string?>("--format", "-f") { Description = "Image format: raw or qcow2 (detected when omitted)" };
        format.AcceptOnlyFromAmong(ImageOpener.Formats);
        var socket = new Option<string?>("--socket", "-k") { Description = "Listen on this Unix socket" };
        var port = new Option<int?>("--port", "-p") { Description = "Listen on this TCP port (default 10809 when no socket is given)" };
        var bind = new Option<string>("--bind", "-b") { Description = "TCP address to bind", DefaultValueFactory = _ => "127.0.0.1" };
        var name = new Option<string>("--name", "-x") { Description = "Export name", DefaultValueFactory = _ => "" };
        var description = new Option<string?>("--description", "-D") { Description = "Export description shown to clients" };
        var readOnly = new Option<bool>("--read-only", "-r") { Description = "Export read-only" };
        var shared = new Option<int>("--shared", "-e") { Description = "Most clients served at once (1 turns off multi-connection)", DefaultValueFactory = _ => 16 };
        var direct = new Option<bool>("--direct") { Description = "Bypass the host page cache (O_DIRECT)" };
        var forceShare = new Option<bool>("--force-share", "-U") { Description = "Do not lock the image against other writers" };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Log connections and requests to stderr" };

        var command = new Command("serve", "Export an image or block device over NBD until interrupted")
        {
            file, format, socket, port, bind, name, description, readOnly, shared, direct, forceShare, verbose,
        };
        command.Validators.Add(result =>
        {
            if (result.GetValue(socket) is not null && result.GetValue(port) is not null)
            {
                result.AddError("--socket and --port cannot be used together");
            }
        });
        shared.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() < 1)
            {
                result.AddError("--shared must be at least 1");
            }
        });
        port.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int?>() is < 0 or > 65535)
            {
                result.AddError("--port must be between 0 and 65535");
            }
        });
        bind.Validators.Add(result =>
        {
            var text = result.GetValueOrDefault<string>();
            if (!IPAddress.TryParse(text, out _))
            {
                result.AddError($"--bind: '{text}' is not an IP address");
            }
        });
        command.SetAction(CommandRunner.Guard(async (parse, ct) =>
        {
            var options = new ServeOptions(
                parse.GetValue(file)!, parse.GetValue(format), parse.GetValue(socket), parse.GetValue(port),
                parse.GetValue(bind)!, parse.GetValue(name)!, parse.GetValue(description), parse.GetValue(readOnly),
                parse.GetValue(shared), parse.GetValue(direct), !parse.GetValue(forceShare), parse.GetValue(verbose));
            return await RunAsync(options, ct).ConfigureAwait(false);
        }));
        return command;
    }

    private sealed record ServeOptions(
        string File, string? Format, string? Socket, int? Port, string Bind, string Name, string? Description,
        bool ReadOnly, int Shared, bool Direct, bool Locking, bool Verbose);

    private static async Task<int> RunAsync(ServeOptions o, CancellationToken ct)
    {
        using var loggers = Logging.Create(o.Verbose);
        var opened = ImageOpener.Open(o.File, o.Format, o.ReadOnly, o.Direct, o.Locking);
        await using var node = opened.Node;
        await using var slot = new Slot(node, o.ReadOnly, name: o.Name);
        await using var server = new NbdServer(
            new NbdServerOptions { MaxConnections = o.Shared, AdvertiseMultiConn = o.Shared > 1, DefaultExport = o.Name },
            loggers.CreateLogger("blockshot.nbd"));
        server.AddExport(new NbdExport(o.Name, slot, o.ReadOnly, o.Description));

        var inherited = o.Socket is null && o.Port is null ? SystemdSockets.TakeListeners() : [];
        try
        {
            if (inherited.Count > 0)
            {
                foreach (var listener in inherited)
                {
                    server.Listen(listener, "socket-activation");
                }
            }
            else if (o.Socket is not null)
            {
                server.ListenUnix(Path.GetFullPath(o.Socket));
            }
            else
            {
                server.ListenTcp(new IPEndPoint(IPAddress.Parse(o.Bind), o.Port ?? 10809));
            }
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or UnauthorizedAccessException)
        {
            throw new CliException($"cannot listen: {e.Message}", ExitCodes.Failure, e);
        }

        var mode = o.ReadOnly ? "read-only" : "read-write";
        await Console.Error.WriteLineAsync(
            $"blockshot: serving {o.File} ({opened.Format}, {SizeText.Format(node.Size)}, {mode}) as export '{o.Name}' on {string.Join(", ", server.Endpoints)}").ConfigureAwait(false);

        var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c =>
        {
            c.Cancel = true;
            stop.TrySetResult();
        });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c =>
        {
            c.Cancel = true;
            stop.TrySetResult();
        });
        await using (ct.Register(() => stop.TrySetResult()))
        {
            await stop.Task.ConfigureAwait(false);
        }

        await server.StopAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        if (!o.ReadOnly)
        {
            await node.FlushAsync().ConfigureAwait(false);
        }
        return ExitCodes.Success;
    }
}
