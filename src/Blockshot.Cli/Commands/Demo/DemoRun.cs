using System.Security.Cryptography;
using Blockshot.Core.Extents;
using Blockshot.Daemon.Protocol;
using Blockshot.Nbd.Client;

namespace Blockshot.Cli.Commands.Demo;

/// <summary>
/// One run of <c>blockshot demo</c>: the backup main job end to end in one process. A sparse image becomes
/// a tracked device of an in-process daemon, served over NBD; a live snapshot is backed up in full while
/// the device keeps changing; the next snapshot's dirty bitmap, read over NBD, drives an incremental backup
/// that is restored onto a copy of the full one and compared. Every claim printed is checked first.
/// </summary>
internal sealed partial class DemoRun(string dir, long size, CancellationToken ct)
{
    private const string Device = "disk";
    private const string BitmapContext = "qemu:dirty-bitmap:blockshot-cbt";

    private readonly DiskModel _disk = new(size);
    private readonly List<(long Offset, long Length)> _sinceTake = [];
    private int _step;

    private string Image => Path.Combine(dir, "disk.raw");

    private string FullBackup => Path.Combine(dir, "full.qcow2");

    private string Restored => Path.Combine(dir, "restored-incr1.qcow2");

    public async Task RunAsync()
    {
        foreach (var old in (string[])[Image, Image + ".cbt", FullBackup, Restored])
        {
            File.Delete(old);
        }
        await using (var create = File.Create(Image))
        {
            create.SetLength(size);
        }
        Say($"created {Image}: {SizeText.Format(size)} virtual, {SizeText.Format(DemoTools.Allocated(Image))} on disk");

        await using var daemon = await DemoDaemon.StartAsync(dir, ct).ConfigureAwait(false);
        Say($"started the daemon in this process: control socket {daemon.Options.ControlPath}, NBD on {string.Join(", ", daemon.NbdEndpoints)}");
        await daemon.AddTrackedDeviceAsync(Device, Image, ct).ConfigureAwait(false);
        var cbt = await daemon.CbtInfoAsync(Device, ct).ConfigureAwait(false);
        var export = await daemon.ExportDeviceAsync(Device, ct).ConfigureAwait(false);
        Say($"added device '{Device}' with changed-block tracking ({SizeText.Format(cbt.BlockSize)} blocks, sidecar {cbt.Sidecar ?? "none"}) and exported it: {export.Uri}");

        var uri = Parse(export);
        await using var client = await NbdClient.ConnectUnixAsync(uri.SocketPath!, uri.Export, ct).ConfigureAwait(false);
        await WriteAndReadBackAsync(client).ConfigureAwait(false);

        // The full backup: snapshot, keep writing, copy the snapshot.
        var full = await daemon.TakeSnapshotAsync(Device, "full", $"dir:{dir}", ct).ConfigureAwait(false);
        var atFull = _disk.Clone();
        _sinceTake.Clear();
        var fullExport = await daemon.ExportSnapshotAsync(Device, "full", ct).ConfigureAwait(false);
        Say($"took snapshot 'full' (storage dir:{dir}, cbt period {full.CbtPeriod}) and exported it read-only: {fullExport.Uri}");
        await WriteAsync(client, (1L << 20) + 4096 + 7, RandomNumberGenerator.GetBytes(1 << 20)).ConfigureAwait(false);
        await WriteAsync(client, size / 4 * 3, RandomNumberGenerator.GetBytes(64 << 10)).ConfigureAwait(false);
        await client.FlushAsync(ct).ConfigureAwait(false);
        var kept = await daemon.SnapshotInfoAsync("full", ct).ConfigureAwait(false);
        Say($"overwrote {Written(_sinceTake)} of the live device; the snapshot kept {kept.CopiedChunks} chunks ({SizeText.Format(kept.StorageUsed)}) of old data");
        await CheckSnapshotIsolationAsync(export, fullExport, atFull).ConfigureAwait(false);
        await BackupFullAsync(fullExport, atFull).ConfigureAwait(false);

        // The incremental backup: the next snapshot's dirty bitmap says what to copy.
        await daemon.DestroySnapshotAsync("full", ct).ConfigureAwait(false);
        await WriteAsync(client, 0, RandomNumberGenerator.GetBytes(4096)).ConfigureAwait(false);
        await WriteAsync(client, size / 2 + 112345, RandomNumberGenerator.GetBytes(256 << 10)).ConfigureAwait(false);
        await WriteAsync(client, size - 8192, RandomNumberGenerator.GetBytes(8192)).ConfigureAwait(false);
        await client.FlushAsync(ct).ConfigureAwait(false);
        Say($"destroyed snapshot 'full' (the backup has it) and wrote 3 more ranges: {Written(_sinceTake.TakeLast(3))}");
        var incr = await daemon.TakeSnapshotAsync(Device, "incr1", $"dir:{dir}", ct).ConfigureAwait(false);
        var atIncr = _disk.Clone();
        var incrExport = await daemon.ExportSnapshotAsync(Device, "incr1", ct).ConfigureAwait(false);
        Say($"took snapshot 'incr1' (dirty bitmap = changes after period {incr.CbtSince}) and exported it read-only: {incrExport.Uri}");
        Check(incr.CbtSince == full.CbtPeriod, $"incr1's bitmap starts after period {incr.CbtSince}, not after 'full' (period {full.CbtPeriod})");

        var expected = DiskModel.Blocks(_sinceTake, cbt.BlockSize);
        var dirty = await ReadDirtyBitmapAsync(incrExport).ConfigureAwait(false);
        Say($"{BitmapContext} of '{incrExport.Name}', read through the built-in NBD client:");
        Detail(DemoTools.Describe(dirty));
        Check(Same(dirty, expected), $"the dirty bitmap ({DemoTools.Describe(dirty)}) is not the blocks written since 'full' ({DemoTools.Describe(expected)})");
        var map = await daemon.CbtMapAsync(Device, full.CbtPeriod ?? 0, ct).ConfigureAwait(false);
        var mapped = map.Ranges.Select(r => new Extent(r.Offset, r.Length, 1)).ToList();
        Check(Same(mapped, expected), $"cbt map --since {full.CbtPeriod} ({DemoTools.Describe(mapped)}) is not the blocks written since 'full'");
        Say($"dirty bitmap verified: exactly the {SizeText.Format(cbt.BlockSize)} blocks written since 'full' ({expected.Count} runs, {SizeText.Format(DemoTools.Bytes(expected))}); cbt map --since {full.CbtPeriod} agrees");

        await RestoreIncrementalAsync(incrExport, dirty, atIncr).ConfigureAwait(false);
        await RunPeersAsync(incrExport, expected).ConfigureAwait(false);

        await daemon.DestroySnapshotAsync("incr1", ct).ConfigureAwait(false);
        await client.DisposeAsync().ConfigureAwait(false);
        await daemon.StopAsync().ConfigureAwait(false);
        Say($"destroyed 'incr1' and stopped the daemon; the image uses {SizeText.Format(DemoTools.Allocated(Image))} on disk, "
            + $"the full backup {SizeText.Format(DemoTools.Allocated(FullBackup))}");
    }

    private async Task WriteAndReadBackAsync(NbdClient client)
    {
        var first = RandomNumberGenerator.GetBytes(4 << 20);
        var second = RandomNumberGenerator.GetBytes(1 << 20);
        var secondAt = size / 2 + 12345;
        Say($"connected the built-in NBD client: size {SizeText.Format(client.Size)}, flags {client.Flags}");
        await WriteAsync(client, 0, first).ConfigureAwait(false);
        await WriteAsync(client, secondAt, second).ConfigureAwait(false);
        await client.FlushAsync(ct).ConfigureAwait(false);
        Say($"wrote 4 MiB of random data at offset 0 and 1 MiB at offset {secondAt} (unaligned), then flushed");

        var back = new byte[first.Length];
        await client.ReadAsync(0, back, ct).ConfigureAwait(false);
        var back2 = new byte[second.Length];
        await client.ReadAsync(secondAt, back2, ct).ConfigureAwait(false);
        Check(back.AsSpan().SequenceEqual(first) && back2.AsSpan().SequenceEqual(second), "data read back through NBD differs from what was written");
        Say($"read both ranges back through NBD: identical (SHA-256 {Convert.ToHexString(SHA256.HashData(first))[..16]}…)");

        var map = new List<Extent>();
        for (long at = 0; at < client.Size;)
        {
            var extents = await client.GetExtentsAsync(at, (uint)Math.Min(client.Size - at, 1L << 31), ct).ConfigureAwait(false);
            Check(extents.Count > 0 && extents[^1].End > at, $"the server described no allocation at offset {at}");
            map.AddRange(extents);
            at = extents[^1].End;
        }
        Say("allocation map (NBD base:allocation):");
        foreach (var e in DemoTools.MergeAllocation(map))
        {
            Detail($"{e.Offset,14:N0}  {SizeText.Format(e.Length),10}  {((e.Flags & AllocationFlags.Hole) != 0 ? "hole, reads as zero" : "data")}");
        }
    }

    private async Task WriteAsync(NbdClient client, long offset, byte[] data)
    {
        await client.WriteAsync(offset, data, cancellationToken: ct).ConfigureAwait(false);
        _disk.Write(offset, data);
        _sinceTake.Add((offset, data.Length));
    }

    private void Say(string text) => Console.WriteLine($"{++_step,2}. {text}");

    private static void Detail(string text) => Console.WriteLine("      " + text);

    private static void Check(bool ok, string what)
    {
        if (!ok)
        {
            throw new CliException($"demo failed: {what}", ExitCodes.Failure);
        }
    }

    private static bool Same(List<Extent> a, List<Extent> b) =>
        a.Select(e => (e.Offset, e.Length)).SequenceEqual(b.Select(e => (e.Offset, e.Length)));

    private static string Written(IEnumerable<(long Offset, long Length)> ranges) =>
        string.Join(", ", ranges.Select(r => $"{SizeText.Format(r.Length)} at {r.Offset:N0}"));

    private static NbdUri Parse(ExportInfo export) =>
        NbdUri.TryParse(export.Uri ?? "", out var uri, out var error) && uri!.SocketPath is not null ? uri
            : throw new CliException($"demo failed: export '{export.Name}' has no usable NBD URI ({export.Uri}): {error}", ExitCodes.Failure);
}
