using System.Net;
using Blockshot.Core;
using Blockshot.Drivers;

namespace Blockshot.Nbd.Tests;

public class TcpTests
{
    [RequiresToolsFact("qemu-io")]
    public async Task Tcp_listener_serves_named_exports_with_nodelay()
    {
        await using var server = new NbdServer();
        server.AddExport(new NbdExport("a", new Slot(new MemoryNode(8 << 20))));
        server.AddExport(new NbdExport("b", new Slot(new MemoryNode(8 << 20))));
        var endpoint = server.ListenTcp(new IPEndPoint(IPAddress.Loopback, 0));
        Assert.NotEqual(0, endpoint.Port);
        Assert.Contains($"tcp:127.0.0.1:{endpoint.Port}", server.Endpoints);
        var r = await ProcessRunner.RunAsync("qemu-io", ["-f", "raw", "-c", "write -P 0x11 0 64k", "-c", "read -P 0x11 0 64k", $"nbd://127.0.0.1:{endpoint.Port}/a"]);
        r.EnsureSuccess("qemu-io over TCP");
        var other = await ProcessRunner.RunAsync("qemu-io", ["-f", "raw", "-c", "read -P 0 0 64k", $"nbd://127.0.0.1:{endpoint.Port}/b"]);
        other.EnsureSuccess("qemu-io export b");
        Assert.DoesNotContain("verification failed", (r.Stdout + other.Stdout).ToLowerInvariant());
    }

    [RequiresToolsFact("/usr/bin/python3")]
    public async Task A_live_unix_socket_is_not_stolen_and_a_stale_one_is_replaced()
    {
        using var dir = new TempDir();
        var path = dir.File("s.sock");
        await using (var first = new NbdServer())
        {
            first.ListenUnix(path);
            await using var second = new NbdServer();
            var e = Assert.Throws<IOException>(() => second.ListenUnix(path));
            Assert.Contains("in use", e.Message);
        }

        // A socket file left by a process that died without unlinking it.
        (await ProcessRunner.RunAsync("/usr/bin/python3", ["-c", $"import socket; socket.socket(socket.AF_UNIX).bind('{path}')"])).EnsureSuccess("bind");
        Assert.True(File.Exists(path));
        await using var third = new NbdServer();
        third.ListenUnix(path);

        File.WriteAllText(dir.File("plain"), "not a socket");
        await using var fourth = new NbdServer();
        Assert.Throws<IOException>(() => fourth.ListenUnix(dir.File("plain")));
    }
}
