using System.Text;
using System.Text.Json;

namespace Blockshot.Daemon.Tests;

/// <summary>JSON-RPC 2.0 conformance of the dispatcher, with the daemon's real method set.</summary>
public class DispatcherTests
{
    private static int Code(JsonObject reply) => reply["error"]!["code"]!.GetValue<int>();

    [Theory]
    [InlineData("{", -32700)]
    [InlineData("not json", -32700)]
    [InlineData("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"describe\"", -32700)]
    [InlineData("42", -32600)]
    [InlineData("\"describe\"", -32600)]
    [InlineData("null", -32600)]
    [InlineData("[]", -32600)]
    [InlineData("{\"id\":1,\"method\":\"describe\"}", -32600)]
    [InlineData("{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"describe\"}", -32600)]
    [InlineData("{\"jsonrpc\":\"2.0\",\"id\":1}", -32600)]
    [InlineData("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":7}", -32600)]
    [InlineData("{\"jsonrpc\":\"2.0\",\"id\":{\"a\":1},\"method\":\"describe\"}", -32600)]
    [InlineData("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"describe\",\"extra\":true}", -32600)]
    [InlineData("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"no.such\"}", -32601)]
    [InlineData("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"device.add\"}", -32602)]
    [InlineData("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"device.add\",\"params\":{\"name\":\"d\"}}", -32602)]
    [InlineData("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"device.add\",\"params\":{\"name\":5,\"file\":\"/x\"}}", -32602)]
    [InlineData("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"device.add\",\"params\":{\"name\":\"d\",\"file\":\"/x\",\"colour\":1}}", -32602)]
    [InlineData("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"device.list\",\"params\":[1,2]}", -32602)]
    [InlineData("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"device.list\",\"params\":\"x\"}", -32602)]
    [InlineData("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"device.suspend\",\"params\":{\"name\":\"d\",\"timeout-ms\":1.5}}", -32602)]
    [InlineData("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"device.suspend\",\"params\":{\"name\":\"d\",\"timeout-ms\":-1}}", -32602)]
    [InlineData("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"filter.insert\",\"params\":{\"device\":\"d\",\"type\":\"fault\",\"settings\":{\"a\":[1]}}}", -32602)]
    [InlineData("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"events.subscribe\",\"params\":{\"events\":[\"nope.*\"]}}", -32602)]
    [InlineData("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"mirror.start\",\"params\":{\"device\":\"d\",\"target\":\"/t\",\"granularity\":1000}}", -32602)]
    [InlineData("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"device.get\",\"params\":{\"name\":\"missing\"}}", -32001)]
    [InlineData("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"job.pause\",\"params\":{\"id\":\"job-9\"}}", -32001)]
    public async Task Bad_input_gets_an_error_object_with_the_right_code(string line, int code)
    {
        await using var d = await DaemonFixture.StartAsync();
        var reply = await d.RawAsync(line);
        Assert.Equal("2.0", reply["jsonrpc"]!.GetValue<string>());
        Assert.Equal(code, Code(reply));
        Assert.False(string.IsNullOrWhiteSpace(reply["error"]!["message"]!.GetValue<string>()));
        Assert.Equal(ControlErrorCodes.NameOf(code), reply["error"]!["data"]!["error"]!.GetValue<string>());
        Assert.Null(reply["result"]);
    }

    [Theory]
    [InlineData("7", "7")]
    [InlineData("\"abc\"", "\"abc\"")]
    [InlineData("null", "null")]
    [InlineData("1.5", "1.5")]
    public async Task The_reply_carries_the_request_id(string id, string expected)
    {
        await using var d = await DaemonFixture.StartAsync();
        var reply = await d.RawAsync($"{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"device.list\"}}");
        Assert.Equal(expected, reply["id"]?.ToJsonString() ?? "null");
        Assert.IsType<JsonArray>(reply["result"]);
    }

    [Fact]
    public async Task Notifications_run_but_get_no_reply_even_when_they_fail()
    {
        await using var d = await DaemonFixture.StartAsync();
        var context = new Control.RpcContext(1, null);
        var image = d.Image("n.raw", 1 << 20);
        var added = await d.Daemon.Dispatcher.HandleAsync(
            Encoding.UTF8.GetBytes($"{{\"jsonrpc\":\"2.0\",\"method\":\"device.add\",\"params\":{{\"name\":\"n\",\"file\":\"{image}\"}}}}"), context, default);
        Assert.Null(added);
        Assert.Single(await d.Registry.ListDevicesAsync());
        Assert.Null(await d.Daemon.Dispatcher.HandleAsync(Encoding.UTF8.GetBytes("{\"jsonrpc\":\"2.0\",\"method\":\"no.such\"}"), context, default));
    }

    [Fact]
    public async Task Batches_answer_each_request_in_order_and_skip_notifications()
    {
        await using var d = await DaemonFixture.StartAsync();
        var reply = await d.Daemon.Dispatcher.HandleAsync(Encoding.UTF8.GetBytes(
            "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"device.list\"}," +
            "{\"jsonrpc\":\"2.0\",\"method\":\"device.list\"}," +
            "5," +
            "{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"method\":\"nope\"}]"), new Control.RpcContext(1, null), default);
        var array = Assert.IsType<JsonArray>(JsonNode.Parse(reply!));
        Assert.Equal(3, array.Count);
        Assert.Equal(1, array[0]!["id"]!.GetValue<int>());
        Assert.Equal(-32600, array[1]!["error"]!["code"]!.GetValue<int>());
        Assert.Equal(-32601, array[2]!["error"]!["code"]!.GetValue<int>());
        Assert.Equal("x", array[2]!["id"]!.GetValue<string>());
    }

    [Fact]
    public async Task Describe_lists_every_method_with_its_parameters_and_the_error_codes()
    {
        await using var d = await DaemonFixture.StartAsync();
        var reply = await d.RawAsync("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"describe\"}");
        var info = reply["result"].Deserialize(ProtocolJsonContext.Default.DescribeInfo)!;
        Assert.Equal("blockshot-control/1", info.Protocol);
        var names = info.Methods.Select(m => m.Name).ToList();
        foreach (var expected in new[]
        {
            "describe", "daemon.info", "device.add", "device.remove", "device.list", "device.get", "device.suspend", "device.resume",
            "device.reload", "export.add", "export.remove", "export.list", "filter.insert", "filter.remove", "filter.types",
            "job.list", "job.get", "job.pause", "job.resume", "job.cancel", "job.set-speed", "job.wait", "job.dismiss",
            "mirror.start", "events.subscribe", "events.unsubscribe",
        })
        {
            Assert.Contains(expected, names);
        }
        var add = info.Methods.Single(m => m.Name == "device.add");
        Assert.Contains(add.Params, p => p.Name == "file" && p.Required && p.Type == "string");
        Assert.Contains(add.Params, p => p.Name == "read-only" && !p.Required && p.Type == "boolean");
        Assert.Contains(info.Errors, e => e.Code == -32001 && e.Name == "not-found");
        Assert.Contains(info.Events, e => e.Name == "job.progress");
        Assert.Contains(info.FilterTypes, t => t.Type == "throttle" && t.Settings.Any(s => s.Name == "bps"));
        Assert.Contains(info.ExportTypes, t => t.Type == "fuse" && t.Available == File.Exists("/dev/fuse") && (t.Available == (t.Reason is null)));
        Assert.Contains(info.ExportTypes, t => t.Type == "nbd" && t.Available);
    }

    [Fact]
    public async Task Deep_nesting_and_huge_numbers_are_answered_not_thrown()
    {
        await using var d = await DaemonFixture.StartAsync();
        var deep = new string('[', 5000) + new string(']', 5000);
        Assert.Equal(-32700, Code(await d.RawAsync(deep)));
        var huge = await d.RawAsync("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"device.suspend\",\"params\":{\"name\":\"d\",\"timeout-ms\":1e400}}");
        Assert.True(Code(huge) is -32602 or -32700);
        var invalidUtf8 = await d.Daemon.Dispatcher.HandleAsync(new byte[] { 0x7b, 0xff, 0xfe, 0x7d }, new Control.RpcContext(1, null), default);
        Assert.Equal(-32700, JsonNode.Parse(invalidUtf8!)!["error"]!["code"]!.GetValue<int>());
    }
}
