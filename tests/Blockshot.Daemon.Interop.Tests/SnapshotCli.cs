using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Blockshot.Daemon.Interop.Tests;

/// <summary>Helpers for the snapshot and CBT tests: the CLI against one daemon, images, peers.</summary>
public static partial class SnapshotCli
{
    public static async Task<Run.Result> Cli(DaemonProcess daemon, params string[] args) =>
        await Run.ToEndAsync(Repo.Launcher, ["--control", daemon.Control, .. args]);

    public static async Task<JsonNode> Json(DaemonProcess daemon, params string[] args) =>
        JsonNode.Parse((await Cli(daemon, ["-o", "json", .. args])).Ok(string.Join(' ', args)).Stdout)!;

    /// <summary>Fills an image with a byte pattern through qemu-io over NBD (so it goes through the device's stack).</summary>
    public static async Task WriteAsync(string uri, int pattern, long offset, long length) =>
        (await Run.ToEndAsync("qemu-io", ["-f", "raw", "-c", $"write -P {pattern} {offset} {length}", uri])).Ok($"qemu-io write {pattern}@{offset}");

    /// <summary>qemu-img compare of two images (raw file or NBD URI), exit code 0 when identical.</summary>
    public static Task<Run.Result> CompareAsync(string a, string b) =>
        Run.ToEndAsync("qemu-img", ["compare", "-f", "raw", "-F", "raw", a, b]);

    /// <summary>Stops or continues a process (fio) with SIGSTOP / SIGCONT.</summary>
    public static void Signal(Process process, bool stop) => Kill(process.Id, stop ? 19 : 18);

    /// <summary>Waits until the device has no request in flight.</summary>
    public static async Task DrainedAsync(DaemonProcess daemon, string device)
    {
        var clock = Stopwatch.StartNew();
        while ((await Json(daemon, "device", "list")).AsArray().Single(d => d!["name"]!.GetValue<string>() == device)!["in-flight"]!.GetValue<int>() > 0)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"device {device} did not drain");
            await Task.Delay(20);
        }
    }

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);
}
