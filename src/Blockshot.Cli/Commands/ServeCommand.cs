using System.CommandLine;
using System.Net;
using System.Runtime.InteropServices;
using Blockshot.Core;
using Blockshot.Fuse;
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
        var fuse = new Option<string?>("--fuse") { Description = "Also (or only) export as a regular file at this path over FUSE" };
        var loop = new Option<bool>("--loop") { Description = "With --fuse: attach a loop device to the file and print /dev/loopN" };
        var zeroCopy = new Option<string>("--zero-copy")
        {
            Description = "Send reads of 64 KiB or more that the page cache holds from there with sendfile (raw images, buffered): "
                + "auto (default) while two or more connections read the export, as nbdcopy does; on always; off never",
            DefaultValueFactory = _ => "auto",
        };
        zeroCopy.AcceptOnlyFromAmong("auto", "on", "off");

        var command = new Command("serve", "Export an image or block device over NBD until interrupted")
        {
            file, format, socket, port, bind, name, description, readOnly, shared, direct, forceShare, verbose, fuse, loop, zeroCopy,
        };
        command.Validators.Add(result =>
        {
            if (result.GetValue(socket) is not null && result.GetValue(port) is not null)
            {
                result.AddError("--socket and --port cannot be used together");
            }
            if (result.GetValue(loop) && result.GetValue(fuse) is null)
            {
                result.AddError("--loop needs --fuse PATH");
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
                parse.GetValue(shared), parse.GetValue(direct), !parse.GetValue(forceShare), parse.GetValue(verbose),
                parse.GetValue(fuse), parse.GetValue(loop), parse.GetValue(zeroCopy)!);
            return await RunAsync(options, ct).ConfigureAwait(false);
        }));
        return command;
    }

    private sealed record ServeOptions(
        string File, string? Format, string? Socket, int? Port, string Bind, string Name, string? Description,
        bool ReadOnly, int Shared, bool Direct, bool Locking, bool Verbose, string? Fuse, bool Loop, string ZeroCopy);

    private static async Task<FuseExport> StartFuseAsync(Slot slot, ServeOptions o, CancellationToken ct)
    {
        try
        {
            return await FuseExport.StartAsync(slot, Path.GetFullPath(o.Fuse!), new FuseExportOptions { ReadOnly = o.ReadOnly, Loop = o.Loop }, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or SystemCallException or InvalidOperationException)
        {
            throw new CliException($"cannot export over FUSE at {o.Fuse}: {e.Message}", ExitCodes.Failure, e);
        }
    }

    private static async Task<int> RunAsync(ServeOptions o, CancellationToken ct)
    {
        using var loggers = Logging.Create(o.Verbose);
        var opened = await ImageOpener.OpenAsync(o.File, o.Format, o.ReadOnly, o.Direct, o.Locking).ConfigureAwait(false);
        await using var node = opened.Node;
        await using var slot = new Slot(node, o.ReadOnly, name: o.Name);
        await using var server = new NbdServer(
            new NbdServerOptions
            {
                MaxConnections = o.Shared,
                AdvertiseMultiConn = o.Shared > 1,
                DefaultExport = o.Name,
                ZeroCopyReadMinLength = o.ZeroCopy == "off" ? 0 : NbdServerOptions.ZeroCopyDefaultMinLength,
                ZeroCopyMinConnections = o.ZeroCopy == "on" ? 1 : 2,
            },
            loggers.CreateLogger("blockshot.nbd"));
        server.AddExport(new NbdExport(o.Name, slot, o.ReadOnly, o.Description));

        // With --fuse alone there is no NBD listener; otherwise NBD as usual (socket activation, socket or port).
        var nbd = o.Fuse is null || o.Socket is not null || o.Port is not null;
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
            else if (nbd)
            {
                server.ListenTcp(new IPEndPoint(IPAddress.Parse(o.Bind), o.Port ?? 10809));
            }
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or UnauthorizedAccessException)
        {
            throw new CliException($"cannot listen: {e.Message}", ExitCodes.Failure, e);
        }

        await using var fuseExport = o.Fuse is null ? null : await StartFuseAsync(slot, o, ct).ConfigureAwait(false);
        var where = new List<string>(server.Endpoints);
        if (fuseExport is not null)
        {
            where.Add("fuse:" + fuseExport.Mountpoint + (fuseExport.LoopDevicePath is { } dev ? $" (loop device {dev})" : ""));
        }

        var mode = o.ReadOnly ? "read-only" : "read-write";
        await Console.Error.WriteLineAsync(
            $"blockshot: serving {o.File} ({opened.Format}, {SizeText.Format(node.Size)}, {mode}) as export '{o.Name}' on {string.Join(", ", where)}").ConfigureAwait(false);
        if (fuseExport?.LoopDevicePath is { } loopDevice)
        {
            // The device path on stdout alone, for scripts: dev=$(blockshot serve ... --fuse f --loop | head -1)
            Console.WriteLine(loopDevice);
        }

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
        if (fuseExport is not null)
        {
            await fuseExport.DisposeAsync().ConfigureAwait(false);
        }
        try
        {
            if (!o.ReadOnly)
            {
                await node.FlushAsync().ConfigureAwait(false);
            }
            // Close now, not at the end of the scope, so a failure is reported: a qcow2 image stores its
            // bitmaps and clears its dirty bit here.
            await node.DisposeAsync().ConfigureAwait(false);
        }
        catch (BlockException e)
        {
            throw new CliException($"{o.File}: could not close the image cleanly: {e.Message}", ExitCodes.Failure, e);
        }
        return ExitCodes.Success;
    }
}
