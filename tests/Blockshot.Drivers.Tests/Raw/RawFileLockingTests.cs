using System.Diagnostics;
using System.Globalization;
using Blockshot.Core;

namespace Blockshot.Drivers.Tests.Raw;

public sealed class RawFileLockingTests : IDisposable
{
    private static readonly RawFileOptions ReadWrite = new();
    private static readonly RawFileOptions ReadOnly = new() { ReadOnly = true };
    private static readonly RawFileOptions Unlocked = new() { Locking = false };

    private readonly TempDir _dir = new("blockshot-raw-lock");
    private readonly string _path;

    public RawFileLockingTests()
    {
        _path = RawFiles.CreateSparse(_dir.File("disk.raw"), 1 << 20);
    }

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task A_second_writer_of_ours_gets_the_locked_error_until_the_first_closes()
    {
        await using (var first = RawFileNode.Open(_path, ReadWrite))
        {
            Assert.True(first.IsLocked);
            var e = Assert.Throws<ImageOpenException>(() => RawFileNode.Open(_path, ReadWrite));
            Assert.Equal(ImageOpenError.Locked, e.Reason);
            Assert.Equal(_path, e.Path);
            Assert.Contains(_path, e.Message);
            Assert.Contains("\"write\"", e.Message);
            Assert.Contains($"pid {Environment.ProcessId}, this process", e.Message);
        }
        await using var second = RawFileNode.Open(_path, ReadWrite);
        Assert.True(second.IsLocked);
    }

    [Theory]
    [InlineData(false, new[] { 100, 101, 103, 201, 203 })]
    [InlineData(true, new[] { 100, 201, 203 })]
    public async Task Lock_bytes_follow_the_qemu_scheme(bool readOnly, int[] expected)
    {
        await using var node = RawFileNode.Open(_path, readOnly ? ReadOnly : ReadWrite);
        Assert.Equal(expected, LockedBytesOf(_path));
    }

    [RequiresToolsFact("qemu-io")]
    public async Task Our_writer_makes_qemu_io_writes_fail_until_it_closes()
    {
        await using (var node = RawFileNode.Open(_path, ReadWrite))
        {
            var refused = await ToolRun.RunAsync("qemu-io", "-f", "raw", "-c", "write 0 512", _path);
            Assert.True(refused.ExitCode != 0, refused.Output);
            Assert.Contains("Failed to get \"write\" lock", refused.Stderr + refused.Stdout);
        }
        var allowed = await ToolRun.RunAsync("qemu-io", "-f", "raw", "-c", "write -P 0x5a 0 512", _path);
        Assert.True(allowed.ExitCode == 0 && allowed.Stderr.Length == 0, allowed.Output);
        Assert.Equal(0x5a, (await File.ReadAllBytesAsync(_path))[0]);
    }

    [RequiresToolsFact("qemu-nbd")]
    public async Task A_qemu_nbd_serving_the_image_makes_our_opens_fail()
    {
        var socket = _dir.File("nbd.sock");
        using var server = ToolRun.Start("qemu-nbd", "-f", "raw", "-k", socket, _path);
        try
        {
            await WaitForAsync(() => File.Exists(socket), server, "qemu-nbd to listen");

            var writer = Assert.Throws<ImageOpenException>(() => RawFileNode.Open(_path, ReadWrite));
            Assert.Equal(ImageOpenError.Locked, writer.Reason);
            Assert.Contains($"qemu-nbd (pid {server.Id})", writer.Message);
            Assert.DoesNotContain("this process", writer.Message); // our own half-open descriptor is not a holder

            // A read-only open insists nobody writes under it, and qemu-nbd writes.
            var reader = Assert.Throws<ImageOpenException>(() => RawFileNode.Open(_path, ReadOnly));
            Assert.Equal(ImageOpenError.Locked, reader.Reason);

            // Without locking the open goes ahead, like qemu's force-share.
            await using var forced = RawFileNode.Open(_path, Unlocked);
            Assert.False(forced.IsLocked);
        }
        finally
        {
            server.Kill();
            await server.WaitForExitAsync();
        }
        await using var after = RawFileNode.Open(_path, ReadWrite);
    }

    [RequiresToolsFact("qemu-io")]
    public async Task Read_only_opens_coexist_with_each_other_and_with_qemu_readers()
    {
        await File.WriteAllBytesAsync(_path, Patterns.Make(1 << 20, 0, 2));
        await using var a = RawFileNode.Open(_path, ReadOnly);
        await using var b = RawFileNode.Open(_path, ReadOnly);
        var buffer = new byte[512];
        await b.ReadAsync(0, buffer);
        Assert.Equal(Patterns.Make(512, 0, 2), buffer);

        var qemuRead = await ToolRun.RunAsync("qemu-io", "-r", "-f", "raw", "-c", "read 0 512", _path);
        Assert.True(qemuRead.ExitCode == 0 && qemuRead.Stderr.Length == 0, qemuRead.Output);

        // Writers stay out while readers hold the image: ours and qemu's.
        var ours = Assert.Throws<ImageOpenException>(() => RawFileNode.Open(_path, ReadWrite));
        Assert.Equal(ImageOpenError.Locked, ours.Reason);
        var qemuWrite = await ToolRun.RunAsync("qemu-io", "-f", "raw", "-c", "write 0 512", _path);
        Assert.Contains("Failed to get \"write\" lock", qemuWrite.Stderr + qemuWrite.Stdout);
    }

    [RequiresToolsFact("qemu-io")]
    public async Task Locking_off_bypasses_and_takes_no_locks()
    {
        await using var locked = RawFileNode.Open(_path, ReadWrite);
        await using var unlocked = RawFileNode.Open(_path, Unlocked);
        await unlocked.WriteAsync(0, new byte[] { 1 }, IoFlags.None);
        await using (var other = RawFileNode.Open(_path, Unlocked))
        {
            Assert.False(other.IsLocked);
        }
        await locked.DisposeAsync();

        // With only the unlocked node left, qemu sees no lock at all.
        Assert.Empty(LockedBytesOf(_path));
        var qemuWrite = await ToolRun.RunAsync("qemu-io", "-f", "raw", "-c", "write 0 512", _path);
        Assert.True(qemuWrite.ExitCode == 0 && qemuWrite.Stderr.Length == 0, qemuWrite.Output);
    }

    /// <summary>The lock bytes this process holds on <paramref name="path"/>, from /proc/self/fdinfo.</summary>
    private static int[] LockedBytesOf(string path)
    {
        var bytes = new SortedSet<int>();
        foreach (var link in Directory.GetFiles("/proc/self/fd"))
        {
            if (new FileInfo(link).LinkTarget != path)
            {
                continue;
            }
            foreach (var line in File.ReadAllLines($"/proc/self/fdinfo/{Path.GetFileName(link)}"))
            {
                if (!line.StartsWith("lock:", StringComparison.Ordinal))
                {
                    continue;
                }
                var fields = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                Assert.Equal("OFDLCK", fields[2]);
                Assert.Equal("READ", fields[4]);
                var start = int.Parse(fields[^2], CultureInfo.InvariantCulture);
                var end = int.Parse(fields[^1], CultureInfo.InvariantCulture);
                for (var b = start; b <= end; b++)
                {
                    bytes.Add(b);
                }
            }
        }
        return [.. bytes];
    }

    private static async Task WaitForAsync(Func<bool> condition, Process process, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"gave up waiting for {what}: exited with {process.ExitCode}: {await process.StandardError.ReadToEndAsync()}");
            }
            if (clock.Elapsed > TimeSpan.FromSeconds(10))
            {
                throw new TimeoutException($"gave up waiting for {what}");
            }
            await Task.Delay(20);
        }
    }
}
