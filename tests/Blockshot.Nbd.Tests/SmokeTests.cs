namespace Blockshot.Nbd.Tests;

public class SmokeTests
{
    [RequiresToolsFact("qemu-io")]
    public async Task Qemu_io_writes_and_reads_back_a_pattern()
    {
        await using var fx = new ServerFixture();
        fx.AddMemoryExport("disk", 64 << 20);
        var r = await ProcessRunner.RunAsync("qemu-io", ["-f", "raw", "-c", "write -P 0x5a 1M 64k", "-c", "read -P 0x5a 1M 64k", "-c", "read -P 0 0 1M", fx.Uri("disk")]);
        r.EnsureSuccess("qemu-io");
        Assert.Contains("read 65536/65536", r.Stdout);
        Assert.DoesNotContain("Pattern verification failed", r.Stdout + r.Stderr);
    }
}
