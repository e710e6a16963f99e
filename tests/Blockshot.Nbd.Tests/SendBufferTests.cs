namespace Blockshot.Nbd.Tests;

public class SendBufferTests
{
    private static int KernelValue(string name) => int.Parse(File.ReadAllText($"/proc/sys/net/core/{name}").Trim(), System.Globalization.CultureInfo.InvariantCulture);

    private static async Task<int> ServerSideSendBufferAsync(ServerFixture fx)
    {
        fx.AddMemoryExport("disk", 1 << 20);
        await using var client = await RawNbdClient.ConnectAsync(fx.SocketPath);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (fx.Server.ConnectionSendBufferSizes.Count == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the server never registered the connection");
            await Task.Delay(10);
        }
        return Assert.Single(fx.Server.ConnectionSendBufferSizes);
    }

    [Fact]
    public async Task Accepted_connections_get_the_send_buffer_asked_for_within_the_kernel_cap()
    {
        const int asked = 1 << 20;
        await using var fx = new ServerFixture(new NbdServerOptions { SendBufferBytes = asked });
        var size = await ServerSideSendBufferAsync(fx);
        // Linux caps SO_SNDBUF at wmem_max and reports twice what it granted.
        Assert.Equal(2 * Math.Min(asked, KernelValue("wmem_max")), size);
    }

    [Fact]
    public async Task A_zero_setting_leaves_the_kernel_default()
    {
        await using var fx = new ServerFixture(new NbdServerOptions { SendBufferBytes = 0 });
        var size = await ServerSideSendBufferAsync(fx);
        Assert.Equal(KernelValue("wmem_default"), size);
    }
}
