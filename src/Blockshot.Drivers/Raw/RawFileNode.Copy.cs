using Blockshot.Core;

namespace Blockshot.Drivers;

// Whole-image copies by the image tools: a buffered raw file's bytes are the file's own, so they map
// one to one, and data can be written into it by a copy inside the kernel (FileRangeCopy). O_DIRECT
// nodes do neither: a copy_file_range goes through the page cache that O_DIRECT was asked to avoid.
public sealed partial class RawFileNode
{
    /// <inheritdoc/>
    public override ValueTask<FileDataRange> MapFileDataAsync(long offset, int length)
    {
        if (_direct || length <= 0 || offset < 0 || offset >= Size)
        {
            return default;
        }
        return new(new FileDataRange(_handle, offset, (int)Math.Min(length, Size - offset)));
    }

    /// <inheritdoc/>
    public override async ValueTask<bool> TryWriteFromFileAsync(long offset, FileDataRange source, IoFlags flags)
    {
        if (_direct || !source.IsMapped)
        {
            return false;
        }
        if (_readOnly)
        {
            await ReadOnlyFailure("write").ConfigureAwait(false);
        }
        if (!RequestValidator.InRange(offset, source.Length, Size))
        {
            BlockThrow.WritePastEnd(offset, source.Length, Size);
        }
        await FileRangeCopy.CopyAsync(source.File!, source.FileOffset, _handle, offset, source.Length, Path).ConfigureAwait(false);
        if ((flags & IoFlags.Fua) != 0)
        {
            await SyncAsync("sync after write", offset, source.Length).ConfigureAwait(false);
        }
        return true;
    }
}
