using Blockshot.Daemon.Jobs;

namespace Blockshot.Daemon.Tests;

/// <summary>The mirror job in process: copies under concurrent writes, converges, pivots, and cleans up.</summary>
public class MirrorTests
{
    private const int Size = 32 << 20;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    /// <summary>Writers that each own a stripe of the device and remember what they wrote.</summary>
    private sealed class Writers : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task[] _tasks;
        private readonly byte[] _model;

        public Writers(Slot slot, byte[] initial, int count = 4)
        {
            _model = initial;
            var stripe = initial.Length / count;
            _tasks = [.. Enumerable.Range(0, count).Select(w => Task.Run(async () =>
            {
                var rng = new Random(w + 100);
                while (!_stop.IsCancellationRequested)
                {
                    var length = rng.Next(1, 16) * 4096 - rng.Next(0, 2) * 1000;
                    var offset = w * (long)stripe + rng.Next(0, stripe - length);
                    var data = new byte[length];
                    rng.NextBytes(data);
                    if (rng.Next(10) == 0)
                    {
                        await slot.WriteZeroesAsync(offset, length, IoFlags.None);
                        Array.Clear(_model, (int)offset, length);
                    }
                    else
                    {
                        await slot.WriteAsync(offset, data, IoFlags.None);
                        data.CopyTo(_model.AsSpan((int)offset));
                    }
                    Interlocked.Increment(ref Count);
                    await Task.Yield();
                }
            }))];
        }

        public long Count;

        public byte[] Model => _model;

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await Task.WhenAll(_tasks);
        }
    }

    private static async Task<(DaemonFixture D, Devices.Device Device, byte[] Model)> DeviceAsync(string name = "src")
    {
        var d = await DaemonFixture.StartAsync();
        var image = d.Image(name + ".raw", Size, seed: 7);
        await d.Registry.AddDeviceAsync(name, image, "raw", false, false, true);
        var model = File.ReadAllBytes(image);
        return (d, await d.Registry.GetDeviceAsync(name), model);
    }

    private static async Task<JobInfo> WaitAsync(DaemonFixture d, string id)
    {
        var job = d.Registry.Jobs.Get(id);
        await job.Finished.WaitAsync(TimeSpan.FromSeconds(60));
        return job.ToInfo();
    }

    private static async Task<byte[]> ReadAllAsync(BlockNode node)
    {
        var all = new byte[node.Size];
        for (var at = 0; at < all.Length; at += 1 << 20)
        {
            await node.ReadAsync(at, all.AsMemory(at, Math.Min(1 << 20, all.Length - at)));
        }
        return all;
    }

    [Fact]
    public async Task Mirror_under_concurrent_writes_pivots_to_an_exact_copy_and_leaves_no_layer_behind()
    {
        var (d, device, model) = await DeviceAsync();
        await using var _ = d;
        await d.Registry.InsertFilterAsync("src", "throttle", null, new Dictionary<string, string> { ["iops"] = "1000000" }, Timeout);
        var target = d.Dir.File("copy.raw");
        byte[] expected;
        await using (var writers = new Writers(device.Slot, model))
        {
            var started = await d.Registry.StartMirrorAsync("src", target, pivot: true, speed: 24 << 20, id: null, granularity: 65536);
            Assert.Equal("mirror", started.Type);
            Assert.Contains(device.Filters, f => f.OwnerJob == started.Id);
            Assert.EndsWith("mirror → " + device.Leaf.Describe(), device.Slot.Describe());
            var done = await WaitAsync(d, started.Id);
            Assert.True(done.State == "completed", $"{done.State}: {done.Error}");
            Assert.True(done.Result!["pivoted"]!.GetValue<bool>());
            Assert.True(writers.Count > 100, $"only {writers.Count} writes happened during the mirror");
            await Task.Delay(100);
            await writers.DisposeAsync();
            expected = writers.Model;
        }
        Assert.Equal(target, device.Spec.File);
        Assert.Equal("throttle", Assert.Single(device.Filters).Name);
        Assert.Equal($"throttle(bps=0, iops=1000000) → raw({target})", device.Slot.Describe());
        Assert.Empty(device.Jobs);
        var seen = await ReadAllAsync(device.Slot);
        Assert.Equal(-1, Patterns.FirstDifference(expected, seen));
        await device.FlushAsync();
        Assert.Equal(-1, Patterns.FirstDifference(expected, File.ReadAllBytes(target)));
    }

    [Fact]
    public async Task Mirror_without_pivot_ends_with_source_and_target_identical()
    {
        var (d, device, model) = await DeviceAsync();
        await using var _ = d;
        var target = d.Dir.File("copy.raw");
        var started = await d.Registry.StartMirrorAsync("src", target, pivot: false, speed: 32 << 20, id: "m1", granularity: 4096);
        Assert.Equal("m1", started.Id);
        await using (var writers = new Writers(device.Slot, model))
        {
            await Task.Delay(400);
        }
        var done = await WaitAsync(d, "m1");
        Assert.True(done.State == "completed", $"{done.State}: {done.Error}");
        Assert.False(done.Result!["pivoted"]!.GetValue<bool>());
        Assert.Empty(device.Filters);
        Assert.EndsWith("src.raw", device.Spec.File);
        await device.FlushAsync();
        Assert.Equal(-1, Patterns.FirstDifference(File.ReadAllBytes(device.Spec.File), File.ReadAllBytes(target)));
        Assert.Equal(done.BytesTotal, done.BytesDone);
    }

    [Fact]
    public async Task Pause_stops_the_copy_and_resume_finishes_it()
    {
        var (d, _, _) = await DeviceAsync();
        await using var __ = d;
        var started = await d.Registry.StartMirrorAsync("src", d.Dir.File("copy.raw"), pivot: false, speed: 16 << 20, id: null, granularity: 65536);
        var job = d.Registry.Jobs.Get(started.Id);
        await Task.Delay(200);
        job.Pause();
        Assert.Equal(JobState.Paused, job.State);
        await Task.Delay(200);
        var before = job.ToInfo().BytesDone;
        await Task.Delay(500);
        Assert.Equal(before, job.ToInfo().BytesDone);
        Assert.Equal(ControlErrorCodes.InvalidState, Assert.Throws<ControlException>(job.Pause).Code);
        job.SetSpeed(0);
        job.Resume();
        var done = await WaitAsync(d, started.Id);
        Assert.Equal("completed", done.State);
        Assert.Equal(ControlErrorCodes.InvalidState, Assert.Throws<ControlException>(job.Cancel).Code);
    }

    [Fact]
    public async Task Cancel_takes_the_filter_out_and_releases_the_target()
    {
        var (d, device, _) = await DeviceAsync();
        await using var __ = d;
        var target = d.Dir.File("copy.raw");
        var started = await d.Registry.StartMirrorAsync("src", target, pivot: true, speed: 2 << 20, id: null, granularity: 65536);
        await Task.Delay(200);
        d.Registry.Jobs.Get(started.Id).Cancel();
        var done = await WaitAsync(d, started.Id);
        Assert.Equal("cancelled", done.State);
        Assert.Null(done.Error);
        Assert.Empty(device.Filters);
        Assert.EndsWith("src.raw", device.Spec.File);
        // The target's locks are gone with its descriptor.
        await using var reopened = Drivers.RawFileNode.Open(target);
        Assert.Equal(Size, reopened.Size);
        // A finished job can be dismissed; a device with no running job can go.
        d.Registry.Jobs.Dismiss(started.Id);
        Assert.Empty(d.Registry.Jobs.List());
        await d.Registry.RemoveDeviceAsync("src", force: false);
    }

    [Fact]
    public async Task Bad_targets_and_a_second_mirror_are_refused_before_anything_starts()
    {
        var (d, device, _) = await DeviceAsync();
        await using var __ = d;
        var self = await Assert.ThrowsAsync<ControlException>(() => d.Registry.StartMirrorAsync("src", device.Spec.File, false, 0, null, 65536));
        Assert.Equal(ControlErrorCodes.InvalidParams, self.Code);
        var small = d.Image("small.raw", 1 << 20);
        var wrong = await Assert.ThrowsAsync<ControlException>(() => d.Registry.StartMirrorAsync("src", small, false, 0, null, 65536));
        Assert.Equal(ControlErrorCodes.InvalidParams, wrong.Code);
        var nowhere = await Assert.ThrowsAsync<ControlException>(() => d.Registry.StartMirrorAsync("src", "/nonexistent-dir/x.raw", false, 0, null, 65536));
        Assert.Equal(ControlErrorCodes.NotFound, nowhere.Code);
        var first = await d.Registry.StartMirrorAsync("src", d.Dir.File("a.raw"), false, 1 << 20, null, 65536);
        var second = await Assert.ThrowsAsync<ControlException>(() => d.Registry.StartMirrorAsync("src", d.Dir.File("b.raw"), false, 0, null, 65536));
        Assert.Equal(ControlErrorCodes.InUse, second.Code);
        var reload = await Assert.ThrowsAsync<ControlException>(() => d.Registry.ReloadAsync("src", null, null, Timeout));
        Assert.Equal(ControlErrorCodes.InUse, reload.Code);
        var remove = await Assert.ThrowsAsync<ControlException>(() => d.Registry.RemoveDeviceAsync("src", force: false));
        Assert.Equal(ControlErrorCodes.InUse, remove.Code);
        var userRemove = await Assert.ThrowsAsync<ControlException>(() => d.Registry.RemoveFilterAsync("src", device.Filters[0].Name, Timeout));
        Assert.Equal(ControlErrorCodes.InUse, userRemove.Code);
        await d.Registry.RemoveDeviceAsync("src", force: true);
        Assert.Equal("cancelled", d.Registry.Jobs.Get(first.Id).ToInfo().State);
    }

    [Fact]
    public async Task A_sparse_source_is_copied_sparse_onto_a_new_target()
    {
        await using var d = await DaemonFixture.StartAsync();
        var image = d.Image("sparse.raw", 64 << 20);
        await using (var f = new FileStream(image, FileMode.Open))
        {
            f.Position = 40 << 20;
            f.Write(Patterns.Make(1 << 20, 40 << 20, 3));
        }
        await d.Registry.AddDeviceAsync("sp", image, "raw", false, false, true);
        var target = d.Dir.File("sparse-copy.raw");
        var started = await d.Registry.StartMirrorAsync("sp", target, false, 0, null, 65536);
        var done = await WaitAsync(d, started.Id);
        Assert.Equal("completed", done.State);
        Assert.Equal(1 << 20, done.Result!["bytes-copied"]!.GetValue<long>());
        Assert.Equal(File.ReadAllBytes(image), File.ReadAllBytes(target));
    }
}
