using System.Net.Sockets;
using System.Text;

namespace Blockshot.Daemon.Interop.Tests;

/// <summary>The control socket of a daemon process: JSON-RPC conformance, many clients, permissions.</summary>
public class ControlProtocolTests
{
    [Fact]
    public async Task Malformed_input_unknown_methods_and_wrong_parameters_get_error_objects_and_the_daemon_keeps_serving()
    {
        using var dir = new TempDir("bs-rpc");
        await using var daemon = await DaemonProcess.StartAsync(dir.Path);
        (string Line, int Code)[] cases =
        [
            ("{not json", -32700),
            ("\u0001\u0002garbage\u00ff", -32700),
            ("[]", -32600),
            ("17", -32600),
            ("{\"jsonrpc\":\"2.0\",\"id\":1}", -32600),
            ("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"device.frobnicate\"}", -32601),
            ("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"device.add\",\"params\":{\"name\":\"x\"}}", -32602),
            ("{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"device.add\",\"params\":{\"name\":\"x\",\"file\":true}}", -32602),
            ("{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"job.list\",\"params\":{\"all\":true}}", -32602),
            ("{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"device.remove\",\"params\":{\"name\":\"ghost\"}}", -32001),
            ("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"export.add\",\"params\":{\"device\":\"ghost\",\"type\":\"fuse\"}}", -32001),
        ];
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(daemon.Control));
        await using var stream = new NetworkStream(socket);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        foreach (var (line, code) in cases)
        {
            await stream.WriteAsync(Encoding.UTF8.GetBytes(line + "\n"));
            var reply = JsonNode.Parse((await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30)))!)!;
            Assert.True(code == reply["error"]?["code"]?.GetValue<int>(), $"'{line}' got {reply.ToJsonString()}");
            Assert.False(string.IsNullOrEmpty(reply["error"]!["message"]!.GetValue<string>()));
        }
        // Notifications (no id) are not answered, even when wrong; the next request is.
        await stream.WriteAsync("{\"jsonrpc\":\"2.0\",\"method\":\"nope\"}\n{\"jsonrpc\":\"2.0\",\"id\":\"last\",\"method\":\"daemon.info\"}\n"u8.ToArray());
        var info = JsonNode.Parse((await reader.ReadLineAsync())!)!;
        Assert.Equal("last", info["id"]!.GetValue<string>());
        Assert.Equal(daemon.Pid, info["result"]!["pid"]!.GetValue<int>());
        Assert.False(daemon.HasExited);
    }

    [Fact]
    public async Task Fifty_concurrent_control_clients_are_all_answered()
    {
        using var dir = new TempDir("bs-rpc");
        File.WriteAllBytes(Path.Combine(dir.Path, "d.raw"), new byte[4 << 20]);
        await using var daemon = await DaemonProcess.StartAsync(dir.Path, """{ "devices": [ { "name": "d", "file": "d.raw" } ] }""");
        var answered = await Task.WhenAll(Enumerable.Range(0, 50).Select(async i =>
        {
            await using var client = await daemon.ClientAsync();
            if (i % 5 == 0)
            {
                await client.CallAsync("events.subscribe");
            }
            var calls = await Task.WhenAll(Enumerable.Range(0, 20).Select(async j => (j % 3) switch
            {
                0 => (await client.CallAsync("device.list", null, ProtocolJsonContext.Default.ListDeviceInfo)).Count == 1,
                1 => (await client.CallAsync("daemon.info", null, ProtocolJsonContext.Default.DaemonInfo)).Pid == daemon.Pid,
                _ => await ThrowsNotFound(client),
            }));
            return calls.Count(ok => ok);
        }));
        Assert.All(answered, n => Assert.Equal(20, n));
    }

    private static async Task<bool> ThrowsNotFound(ControlClient client)
    {
        var e = await Assert.ThrowsAsync<ControlException>(() => client.CallAsync("job.get", new JsonObject { ["id"] = "nope" }));
        return e.Code == ControlErrorCodes.NotFound;
    }

    [Fact]
    public async Task The_control_socket_is_mode_0600()
    {
        using var dir = new TempDir("bs-rpc");
        await using var daemon = await DaemonProcess.StartAsync(dir.Path);
        var mode = (await Run.ToEndAsync("stat", ["-c", "%a %F", daemon.Control])).Ok("stat");
        Assert.Equal("600 socket", mode.Stdout.Trim());
    }

    [RequiresRootFact("runuser")]
    public async Task Another_user_cannot_connect_to_the_control_socket()
    {
        using var dir = new TempDir("bs-rpc");
        // Let everyone reach the directory, so only the socket's own mode stands in the way.
        (await Run.ToEndAsync("chmod", ["755", dir.Path])).Ok("chmod");
        await using var daemon = await DaemonProcess.StartAsync(dir.Path);
        var probe = $"import socket; s = socket.socket(socket.AF_UNIX); s.connect('{daemon.Control}'); print('connected')";
        var other = await Run.ToEndAsync("runuser", ["-u", "nobody", "--", "/usr/bin/python3", "-c", probe]);
        Assert.NotEqual(0, other.ExitCode);
        Assert.Contains("Permission denied", other.Stderr);
        var owner = (await Run.ToEndAsync("/usr/bin/python3", ["-c", probe])).Ok("owner connect");
        Assert.Contains("connected", owner.Stdout);
    }
}
