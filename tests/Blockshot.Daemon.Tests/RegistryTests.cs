using System.Diagnostics;

namespace Blockshot.Daemon.Tests;

/// <summary>Devices, exports, filters and slot operations through the registry, in process.</summary>
public class RegistryTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    private static Dictionary<string, string> Settings(params string[] pairs) =>
        pairs.Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);

    [Fact]
    public async Task A_device_reports_size_format_filters_and_exports()
    {
        await using var d = await DaemonFixture.StartAsync();
        var image = d.Image("a.raw", 8 << 20);
        var info = await d.Registry.AddDeviceAsync("a", image, null, readOnly: false, direct: false, locking: true);
        Assert.Equal(8 << 20, info.Size);
        Assert.Equal("raw", info.Format);
        Assert.Equal(image, info.File);
        await d.Registry.AddExportAsync("a", "nbd", null, readOnly: true, "first");
        await d.Registry.InsertFilterAsync("a", "throttle", null, Settings("bps=100M"), Timeout);
        var listed = Assert.Single(await d.Registry.ListDevicesAsync());
        Assert.Equal(["a"], listed.Exports);
        Assert.Equal("throttle", Assert.Single(listed.Filters).Type);
        Assert.StartsWith("throttle(", listed.Stack);
        var export = Assert.Single(await d.Registry.ListExportsAsync());
        Assert.True(export.ReadOnly);
        Assert.Equal($"nbd+unix:///a?socket={d.NbdSocket}", export.Uri);
    }

    [Fact]
    public async Task Names_and_missing_files_are_checked()
    {
        await using var d = await DaemonFixture.StartAsync();
        var image = d.Image("b.raw", 1 << 20);
        var bad = await Assert.ThrowsAsync<ControlException>(() => d.Registry.AddDeviceAsync("bad name", image, null, false, false, true));
        Assert.Equal(ControlErrorCodes.InvalidParams, bad.Code);
        var missing = await Assert.ThrowsAsync<ControlException>(() => d.Registry.AddDeviceAsync("m", d.Dir.File("nope.raw"), null, false, false, true));
        Assert.Equal(ControlErrorCodes.NotFound, missing.Code);
        await d.Registry.AddDeviceAsync("b", image, "raw", false, false, true);
        var twice = await Assert.ThrowsAsync<ControlException>(() => d.Registry.AddDeviceAsync("b", image, "raw", false, false, true));
        Assert.Equal(ControlErrorCodes.AlreadyExists, twice.Code);
        var locked = await Assert.ThrowsAsync<ControlException>(() => d.Registry.AddDeviceAsync("q", image, "qcow2", false, false, true));
        Assert.Equal(ControlErrorCodes.Locked, locked.Code);
        var rawBytes = d.Image("r.raw", 1 << 20);
        var notQcow2 = await Assert.ThrowsAsync<ControlException>(() => d.Registry.AddDeviceAsync("q", rawBytes, "qcow2", false, false, true));
        Assert.Equal(ControlErrorCodes.IoError, notQcow2.Code);
        Assert.Contains("qcow2", notQcow2.Message);
    }

    [Fact]
    public async Task A_qcow2_image_is_detected_opened_and_written_through_its_driver()
    {
        await using var d = await DaemonFixture.StartAsync();
        var path = d.Dir.File("q.qcow2");
        await Blockshot.Qcow2.Qcow2Image.CreateAsync(path, 4 << 20);
        var info = await d.Registry.AddDeviceAsync("q", path, null, false, false, true);
        Assert.Equal("qcow2", info.Format);
        Assert.Equal(4 << 20, info.Size);
        var device = await d.Registry.GetDeviceAsync("q");
        var data = Enumerable.Range(0, 4096).Select(i => (byte)(i * 7)).ToArray();
        await device.Slot.WriteAsync(65536, data, IoFlags.None);
        await d.Registry.RemoveDeviceAsync("q", force: false);
        await using var reopened = await Blockshot.Qcow2.Qcow2Image.OpenAsync(path, new Blockshot.Qcow2.Qcow2OpenOptions { ReadOnly = true });
        var back = new byte[4096];
        await reopened.ReadAsync(65536, back);
        Assert.Equal(data, back);
        Assert.Equal(0, (await Blockshot.Qcow2.Qcow2Image.CheckAsync(path)).Corruptions);
    }

    [Fact]
    public async Task A_second_writer_on_the_same_image_is_refused_as_locked()
    {
        await using var d = await DaemonFixture.StartAsync();
        var image = d.Image("l.raw", 1 << 20);
        await d.Registry.AddDeviceAsync("l1", image, "raw", false, false, true);
        var e = await Assert.ThrowsAsync<ControlException>(() => d.Registry.AddDeviceAsync("l2", image, "raw", false, false, true));
        Assert.Equal(ControlErrorCodes.Locked, e.Code);
    }

    [Fact]
    public async Task Removal_is_refused_while_exported_unless_forced()
    {
        await using var d = await DaemonFixture.StartAsync();
        await d.Registry.AddDeviceAsync("r", d.Image("r.raw", 1 << 20), "raw", false, false, true);
        await d.Registry.AddExportAsync("r", "nbd", "r-export", false, null);
        var refused = await Assert.ThrowsAsync<ControlException>(() => d.Registry.RemoveDeviceAsync("r", force: false));
        Assert.Equal(ControlErrorCodes.InUse, refused.Code);
        Assert.Contains("r-export", refused.Message);
        await d.Registry.RemoveDeviceAsync("r", force: true);
        Assert.Empty(await d.Registry.ListDevicesAsync());
        Assert.Empty(await d.Registry.ListExportsAsync());
    }

    [Fact]
    public async Task Removing_a_middle_filter_rebuilds_the_ones_above_with_their_state()
    {
        await using var d = await DaemonFixture.StartAsync();
        await d.Registry.AddDeviceAsync("s", d.Image("s.raw", 1 << 20), "raw", false, false, true);
        await d.Registry.InsertFilterAsync("s", "throttle", null, Settings("bps=1G"), Timeout);
        await d.Registry.InsertFilterAsync("s", "fault", null, Settings("ops=read", "count=1"), Timeout);
        var device = await d.Registry.GetDeviceAsync("s");
        await Assert.ThrowsAsync<BlockException>(() => device.Slot.ReadAsync(0, new byte[1]).AsTask());
        await d.Registry.RemoveFilterAsync("s", "throttle", Timeout);
        Assert.Equal("fault", Assert.Single(device.Filters).Name);
        await device.Slot.ReadAsync(0, new byte[1]);
        var fault = device.ToInfo().Filters.Single();
        Assert.Equal(1, fault.Counters["injected"]);
        Assert.Equal(2, fault.Counters["matched"]);
        Assert.StartsWith("fault(", device.Slot.Describe());
        Assert.EndsWith($"raw({d.Dir.File("s.raw")})", device.Slot.Describe());
        var dup = await Assert.ThrowsAsync<ControlException>(() => d.Registry.InsertFilterAsync("s", "fault", null, Settings(), Timeout));
        Assert.Equal(ControlErrorCodes.AlreadyExists, dup.Code);
        var gone = await Assert.ThrowsAsync<ControlException>(() => d.Registry.RemoveFilterAsync("s", "throttle", Timeout));
        Assert.Equal(ControlErrorCodes.NotFound, gone.Code);
    }

    [Fact]
    public async Task Suspend_holds_requests_until_resume_and_refuses_a_second_suspend()
    {
        await using var d = await DaemonFixture.StartAsync();
        await d.Registry.AddDeviceAsync("h", d.Image("h.raw", 1 << 20), "raw", false, false, true);
        var device = await d.Registry.GetDeviceAsync("h");
        await d.Registry.SuspendAsync("h", Timeout, hold: null);
        var held = device.Slot.WriteAsync(0, new byte[] { 5 }, IoFlags.None).AsTask();
        await Task.Delay(100);
        Assert.False(held.IsCompleted, "a write ran while the device was suspended");
        var again = await Assert.ThrowsAsync<ControlException>(() => d.Registry.SuspendAsync("h", Timeout, null));
        Assert.Equal(ControlErrorCodes.InvalidState, again.Code);
        // Stack changes still work while suspended; they apply when the device resumes.
        await d.Registry.InsertFilterAsync("h", "throttle", null, Settings(), Timeout);
        await d.Registry.ResumeAsync("h");
        await held.WaitAsync(Timeout);
        var notSuspended = await Assert.ThrowsAsync<ControlException>(() => d.Registry.ResumeAsync("h"));
        Assert.Equal(ControlErrorCodes.InvalidState, notSuspended.Code);
    }

    [Fact]
    public async Task A_suspension_with_a_hold_time_resumes_by_itself()
    {
        await using var d = await DaemonFixture.StartAsync();
        await d.Registry.AddDeviceAsync("t", d.Image("t.raw", 1 << 20), "raw", false, false, true);
        var device = await d.Registry.GetDeviceAsync("t");
        var clock = Stopwatch.StartNew();
        await d.Registry.SuspendAsync("t", Timeout, TimeSpan.FromMilliseconds(200));
        await device.Slot.ReadAsync(0, new byte[1]);
        Assert.InRange(clock.Elapsed.TotalMilliseconds, 150, 5000);
        Assert.False(device.IsSuspended);
    }

    [Fact]
    public async Task Reload_reopens_the_image_under_the_same_filters_and_keeps_the_data()
    {
        await using var d = await DaemonFixture.StartAsync();
        var image = d.Image("re.raw", 1 << 20);
        await d.Registry.AddDeviceAsync("re", image, "raw", false, false, true);
        await d.Registry.InsertFilterAsync("re", "throttle", null, Settings("iops=100000"), Timeout);
        var device = await d.Registry.GetDeviceAsync("re");
        var leaf = device.Leaf;
        await device.Slot.WriteAsync(4096, new byte[] { 1, 2, 3 }, IoFlags.None);
        var info = await d.Registry.ReloadAsync("re", null, null, Timeout);
        Assert.NotSame(leaf, device.Leaf);
        Assert.StartsWith("throttle(", info.Stack);
        var back = new byte[3];
        await device.Slot.ReadAsync(4096, back);
        Assert.Equal(new byte[] { 1, 2, 3 }, back);
    }

    [Fact]
    public async Task Reload_to_another_image_of_the_same_size_switches_what_clients_read()
    {
        await using var d = await DaemonFixture.StartAsync();
        await d.Registry.AddDeviceAsync("m", d.Image("one.raw", 1 << 20, seed: 1), "raw", false, false, true);
        var other = d.Image("two.raw", 1 << 20, seed: 2);
        var device = await d.Registry.GetDeviceAsync("m");
        await d.Registry.ReloadAsync("m", other, null, Timeout);
        var back = new byte[4096];
        await device.Slot.ReadAsync(0, back);
        Assert.Equal(Patterns.Make(4096, 0, 2), back);
        Assert.Equal(other, device.Spec.File);
        var wrongSize = await Assert.ThrowsAsync<ControlException>(() => d.Registry.ReloadAsync("m", d.Image("three.raw", 2 << 20), null, Timeout));
        Assert.Equal(ControlErrorCodes.InvalidParams, wrongSize.Code);
        Assert.Equal(other, device.Spec.File);
    }

    [Fact]
    public async Task A_reload_whose_image_vanished_fails_requests_with_eio_until_it_comes_back()
    {
        await using var d = await DaemonFixture.StartAsync();
        var image = d.Image("v.raw", 1 << 20, seed: 4);
        await d.Registry.AddDeviceAsync("v", image, "raw", false, false, true);
        var device = await d.Registry.GetDeviceAsync("v");
        File.Move(image, image + ".away");
        var e = await Assert.ThrowsAsync<ControlException>(() => d.Registry.ReloadAsync("v", null, null, Timeout));
        Assert.Equal(ControlErrorCodes.NotFound, e.Code);
        var io = await Assert.ThrowsAsync<BlockException>(() => device.Slot.ReadAsync(0, new byte[1]).AsTask());
        Assert.Equal(BlockError.Io, io.Error);
        Assert.NotNull(device.ToInfo().Error);
        File.Move(image + ".away", image);
        await d.Registry.ReloadAsync("v", null, null, Timeout);
        var back = new byte[16];
        await device.Slot.ReadAsync(0, back);
        Assert.Equal(Patterns.Make(16, 0, 4), back);
        Assert.Null(device.ToInfo().Error);
    }

    [Fact]
    public async Task Suspend_times_out_when_a_request_does_not_drain_and_the_device_keeps_running()
    {
        await using var d = await DaemonFixture.StartAsync();
        await d.Registry.AddDeviceAsync("x", d.Image("x.raw", 1 << 20), "raw", false, false, true);
        await d.Registry.InsertFilterAsync("x", "fault", null, Settings("error=none", "delay-ms=2000", "ops=read", "count=1"), Timeout);
        var device = await d.Registry.GetDeviceAsync("x");
        var slow = device.Slot.ReadAsync(0, new byte[1]).AsTask();
        await Task.Delay(50);
        var e = await Assert.ThrowsAsync<ControlException>(() => d.Registry.SuspendAsync("x", TimeSpan.FromMilliseconds(100), null));
        Assert.Equal(ControlErrorCodes.Timeout, e.Code);
        Assert.False(device.IsSuspended);
        await device.Slot.ReadAsync(0, new byte[1]);
        await slow;
    }
}
