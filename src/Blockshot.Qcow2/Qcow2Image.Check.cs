namespace Blockshot.Qcow2;

public static partial class Qcow2Image
{
    /// <summary>
    /// Checks an image (which must not be open for writing elsewhere) as the reference checker does;
    /// with a repair mode, repairs and then checks again, reporting what remains plus what was fixed.
    /// A dirty image is checked as it is (a read-only check never repairs it).
    /// </summary>
    public static ValueTask<Qcow2CheckResult> CheckAsync(string path, Qcow2RepairMode repair = Qcow2RepairMode.None) =>
        CheckAsync(path, repair, locking: true);

    /// <summary>
    /// Checks an image as <see cref="CheckAsync(string, Qcow2RepairMode)"/> does; without
    /// <paramref name="locking"/> the image locks are not taken (force-share, for read-only checks of an
    /// image in use).
    /// </summary>
    public static async ValueTask<Qcow2CheckResult> CheckAsync(string path, Qcow2RepairMode repair, bool locking)
    {
        var options = new Qcow2OpenOptions { ReadOnly = repair == Qcow2RepairMode.None, OpenBacking = false, ForCheck = true, Locking = locking };
        await using var node = await Qcow2Node.OpenAsync(path, options).ConfigureAwait(false);
        var result = await node.CheckAsync(repair).ConfigureAwait(false);
        if (repair == Qcow2RepairMode.None || result.CorruptionsFixed + result.LeaksFixed == 0 || result.CheckErrors > 0)
        {
            return result;
        }
        var again = await node.CheckAsync(Qcow2RepairMode.None).ConfigureAwait(false);
        var final = new Qcow2CheckResult { Filename = path };
        final.TakeMessages(result);
        final.TakeMessages(again);
        final.CopyCountsFrom(again);
        final.CorruptionsFixed = result.CorruptionsFixed;
        final.LeaksFixed = result.LeaksFixed;
        final.TotalClusters = again.TotalClusters;
        final.ImageEndOffset = again.ImageEndOffset;
        return final;
    }
}
