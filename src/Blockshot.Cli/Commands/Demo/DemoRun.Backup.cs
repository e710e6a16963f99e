using Blockshot.Cli.Commands.Image;
using Blockshot.Core.Extents;
using Blockshot.Daemon.Protocol;
using Blockshot.Nbd.Client;
using Blockshot.Qcow2;

namespace Blockshot.Cli.Commands.Demo;

// The backup half of the demo: snapshot isolation, the full backup, the dirty bitmap, the incremental restore.
internal sealed partial class DemoRun
{
    private async Task CheckSnapshotIsolationAsync(ExportInfo device, ExportInfo snapshot, DiskModel atTake)
    {
        var snapshotReads = await DigestAsync(snapshot).ConfigureAwait(false);
        var deviceReads = await DigestAsync(device).ConfigureAwait(false);
        var takeTime = atTake.Digest();
        var now = _disk.Digest();
        Check(snapshotReads == takeTime, $"snapshot 'full' reads {ContentDigest.Short(snapshotReads)}, not the take-time content {ContentDigest.Short(takeTime)}");
        Check(deviceReads == now, $"the device reads {ContentDigest.Short(deviceReads)}, not the data written since {ContentDigest.Short(now)}");
        Check(takeTime != now, "the overwrite did not change the content");
        Say($"snapshot verified: 'full' reads the take-time data ({ContentDigest.Short(snapshotReads)}), the device the new data ({ContentDigest.Short(deviceReads)})");
    }

    /// <summary>Copies the snapshot into a new qcow2 image with <c>image convert</c>'s copier and checks the copy.</summary>
    private async Task BackupFullAsync(ExportInfo snapshot, DiskModel atTake)
    {
        await using var source = await NbdClientNode.ConnectAsync(Parse(snapshot), ct).ConfigureAwait(false);
        await Qcow2Image.CreateAsync(FullBackup, source.Size).ConfigureAwait(false);
        await using var target = await Qcow2Node.OpenAsync(FullBackup, new Qcow2OpenOptions()).ConfigureAwait(false);
        var copier = new Converter(source, target, new ConvertSettings { TargetIsZero = true, Flush = true }, progress: null);
        await copier.RunAsync(ct).ConfigureAwait(false);
        var backup = await ContentDigest.OfAsync(target).ConfigureAwait(false);
        var takeTime = atTake.Digest();
        Check(backup == takeTime, $"the full backup reads {ContentDigest.Short(backup)}, not the take-time content {ContentDigest.Short(takeTime)}");
        Say($"full backup verified: copied '{snapshot.Name}' to {FullBackup} (qcow2, {SizeText.Format(copier.DataBytes)} of data); it equals the take-time content ({ContentDigest.Short(backup)})");
    }

    /// <summary>The dirty runs of the export's <c>qemu:dirty-bitmap:blockshot-cbt</c> context.</summary>
    private async Task<List<Extent>> ReadDirtyBitmapAsync(ExportInfo snapshot)
    {
        var uri = Parse(snapshot);
        await using var client = await NbdClient.ConnectUnixAsync(uri.SocketPath!, uri.Export, BitmapContext, ct).ConfigureAwait(false);
        Check(client.MetaContext == BitmapContext, $"export '{snapshot.Name}' does not offer {BitmapContext}");
        var map = new List<Extent>();
        for (long at = 0; at < client.Size;)
        {
            var extents = await client.GetExtentsAsync(at, (uint)Math.Min(client.Size - at, 1L << 30), ct).ConfigureAwait(false);
            Check(extents.Count > 0 && extents[^1].End > at, $"the server described no dirty-bitmap status at offset {at}");
            map.AddRange(extents);
            at = extents[^1].End;
        }
        return DemoTools.Dirty(map);
    }

    /// <summary>Copies the full backup and applies only the dirty runs, read from the snapshot, onto the copy.</summary>
    private async Task RestoreIncrementalAsync(ExportInfo snapshot, List<Extent> dirty, DiskModel atTake)
    {
        File.Copy(FullBackup, Restored);
        var buffer = new byte[1 << 20];
        string restored, snapshotReads;
        await using (var source = await NbdClientNode.ConnectAsync(Parse(snapshot), ct).ConfigureAwait(false))
        {
            await using var target = await Qcow2Node.OpenAsync(Restored, new Qcow2OpenOptions()).ConfigureAwait(false);
            foreach (var run in dirty)
            {
                for (var at = run.Offset; at < run.End; at += buffer.Length)
                {
                    var piece = buffer.AsMemory(0, (int)Math.Min(buffer.Length, run.End - at));
                    await source.ReadAsync(at, piece).ConfigureAwait(false);
                    await target.WriteAsync(at, piece, Core.IoFlags.None).ConfigureAwait(false);
                }
            }
            await target.FlushAsync().ConfigureAwait(false);
            restored = await ContentDigest.OfAsync(target).ConfigureAwait(false);
            snapshotReads = await ContentDigest.OfAsync(source).ConfigureAwait(false);
        }
        var takeTime = atTake.Digest();
        Check(snapshotReads == takeTime, $"snapshot 'incr1' reads {ContentDigest.Short(snapshotReads)}, not its take-time content {ContentDigest.Short(takeTime)}");
        Check(restored == snapshotReads, $"the full backup plus the incremental reads {ContentDigest.Short(restored)}, not what 'incr1' reads ({ContentDigest.Short(snapshotReads)})");
        Say($"incremental backup verified: {Path.GetFileName(FullBackup)} copied to {Restored} plus only the {dirty.Count} dirty runs "
            + $"({SizeText.Format(DemoTools.Bytes(dirty))}) read from '{snapshot.Name}' equals snapshot 'incr1' ({ContentDigest.Short(restored)})");
    }

    private async Task<string> DigestAsync(ExportInfo export)
    {
        await using var node = await NbdClientNode.ConnectAsync(Parse(export), ct).ConfigureAwait(false);
        return await ContentDigest.OfAsync(node).ConfigureAwait(false);
    }
}
