using System.Diagnostics;
using System.Net.Sockets;

namespace Blockshot.Interop.Tests;

/// <summary>A background server process (ours or a peer's) on a Unix socket, stopped on dispose.</summary>
public sealed class ServedImage : IAsyncDisposable
{
    private readonly Process _process;
    private readonly Task<string> _stderr;

    private ServedImage(Process process, string socket)
    {
        _process = process;
        Socket = socket;
        _stderr = process.StandardError.ReadToEndAsync();
        _ = process.StandardOutput.ReadToEndAsync();
    }

    public string Socket { get; }

    public int Pid => _process.Id;

    public string Uri(string export = "") => $"nbd+unix:///{export}?socket={Socket}";

    public static Task<ServedImage> BlockshotAsync(string socket, params string[] args) =>
        StartAsync(Repo.Launcher, ["serve", .. args, "--socket", socket], socket);

    public static Task<ServedImage> QemuNbdAsync(string socket, params string[] args) =>
        StartAsync("qemu-nbd", [.. args, "-k", socket], socket);

    private static async Task<ServedImage> StartAsync(string tool, string[] args, string socket)
    {
        var process = Process.Start(Run.Info(tool, args))!;
        var served = new ServedImage(process, socket);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited)
            {
                throw new Xunit.Sdk.XunitException($"{tool} exited {process.ExitCode} before serving: {await served._stderr}");
            }
            if (File.Exists(socket))
            {
                try
                {
                    using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    await probe.ConnectAsync(new UnixDomainSocketEndPoint(socket));
                    return served;
                }
                catch (SocketException)
                {
                    // Not listening yet.
                }
            }
            await Task.Delay(50);
        }
        process.Kill(entireProcessTree: true);
        throw new TimeoutException($"{tool} did not start listening on {socket}");
    }

    /// <summary>Sends SIGTERM and returns the exit code and stderr.</summary>
    public async Task<(int ExitCode, string Stderr)> TerminateAsync()
    {
        if (!_process.HasExited)
        {
            kill(_process.Id, 15);
        }
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await _process.WaitForExitAsync(cts.Token);
        return (_process.ExitCode, await _stderr);
    }

    private bool _disposed;

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);
}
