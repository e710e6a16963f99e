using Blockshot.Core;

namespace Blockshot.Qcow2;

// Whole-image copies by the image tools: allocated data clusters lie verbatim in the image (or data)
// file, contiguous runs of them map to one file range; and a write can take its bytes from another file
// (TryWriteFromFileAsync in Qcow2Node.Write.cs), copied inside the kernel into the clusters the write
// allocates, with the same metadata order as any write.
public sealed partial class Qcow2Node
{
    /// <inheritdoc/>
    public override async ValueTask<FileDataRange> MapFileDataAsync(long offset, int length)
    {
        if (_closed || length <= 0 || offset < 0 || offset >= Size)
        {
            return default;
        }
        var end = offset + Math.Min(length, Size - offset);
        var run = await LookupLockedAsync(offset, end).ConfigureAwait(false);
        return run.Kind == RunKind.Data ? new FileDataRange(DataTarget.Handle, run.Host, (int)run.Length) : default;
    }
}
