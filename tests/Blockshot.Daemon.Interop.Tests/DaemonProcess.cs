using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace Blockshot.Daemon.Interop.Tests;

/// <summary><c>./blockshot daemon</c> as a background process in a directory of its own; killed on dispose if still running.</summary>
public sealed partial class DaemonProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stderr = new();
    private readonly Task _pump;

    private DaemonProcess(Process process, string dir)
    {
        _process = process;
        Dir = dir;
        _pump = Task.WhenAll(Pump(process.StandardError), Pump(process.StandardOutput));
    }

    public string Dir { get; }

    public string Control => Path.Combine(Dir, "control.sock");

    public string NbdSocket => Path.Combine(Dir, "nbd.sock");

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    public string Uri(string export) => $"nbd+unix:///{export}?socket={NbdSocket}";

    /// <summary>Starts the daemon in <paramref name="dir"/> (with <c>daemon.json</c> there when <paramref name="config"/> is given) and waits until its control socket answers.</summary>
    public static Task<DaemonProcess> StartAsync(string dir, string? config = null, params string[] extra) =>
        StartAsync(dir, config, null, extra);

    /// <summary>Starts the daemon with extra environment variables.</summary>
    public static async Task<DaemonProcess> StartAsync(string dir, string? config, IDictionary<string, string>? environment, params string[] extra)
    {
        var args = new List<string> { "daemon", "--control", Path.Combine(dir, "control.sock") };
        if (config is not null)
        {
            await File.WriteAllTextAsync(Path.Combine(dir, "daemon.json"), config);
            args.AddRange(["--config", Path.Combine(dir, "daemon.json")]);
        }
        args.AddRange(extra);
        var process = Process.Start(Run.Info(Repo.Launcher, args, environment))!;
        process.StandardInput.Close();
        var daemon = new DaemonProcess(process, dir);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(180);
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited)
            {
                await daemon._pump;
                throw new Xunit.Sdk.XunitException($"the daemon exited {process.ExitCode} before listening: {daemon.Stderr}");
            }
            try
            {
                await using var probe = await ControlClient.ConnectAsync(daemon.Control);
                await probe.CallAsync("daemon.info");
                return daemon;
            }
            catch (ControlUnreachableException)
            {
                await Task.Delay(50);
            }
        }
        process.Kill(entireProcessTree: true);
        throw new TimeoutException($"the daemon did not answer on {daemon.Control}: {daemon.Stderr}");
    }

    public Task<ControlClient> ClientAsync() => ControlClient.ConnectAsync(Control);

    /// <summary>Sends SIGTERM and returns the exit code once the process has ended.</summary>
    public async Task<int> TerminateAsync(TimeSpan? timeout = null)
    {
        if (!_process.HasExited)
        {
            Kill(_process.Id, 15);
        }
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        await _process.WaitForExitAsync(cts.Token);
        await _pump;
        return _process.ExitCode;
    }

    /// <summary>Sends SIGKILL (no cleanup of any kind runs) and waits until the process is gone.</summary>
    public async Task KillHardAsync()
    {
        Kill(_process.Id, 9);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await _process.WaitForExitAsync(cts.Token);
        await _pump;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }

    private async Task Pump(StreamReader reader)
    {
        while (await reader.ReadLineAsync() is { } line)
        {
            lock (_stderr)
            {
                _stderr.AppendLine(line);
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);
}
