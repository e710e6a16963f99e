using Microsoft.Win32.SafeHandles;

namespace Blockshot.Core;

/// <summary>
/// A run of a node's data stored byte for byte in a file: what a copy can move from file to file inside
/// the kernel (copy_file_range) instead of through a buffer. It holds no reference on the handle, so it
/// is only good while the node that mapped it stays open and nothing writes the range; the image tools,
/// which own their nodes, use it. An empty range (<see cref="Length"/> 0) means "not mapped".
/// </summary>
public readonly struct FileDataRange
{
    /// <summary>A range of <paramref name="length"/> bytes at <paramref name="fileOffset"/> of <paramref name="file"/>.</summary>
    public FileDataRange(SafeFileHandle file, long fileOffset, int length)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentOutOfRangeException.ThrowIfNegative(fileOffset);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        File = file;
        FileOffset = fileOffset;
        Length = length;
    }

    /// <summary>The file holding the data (null when not mapped).</summary>
    public SafeFileHandle? File { get; }

    /// <summary>Where the data starts in the file.</summary>
    public long FileOffset { get; }

    /// <summary>Byte count; 0 when not mapped.</summary>
    public int Length { get; }

    /// <summary>True when the range maps something.</summary>
    public bool IsMapped => Length > 0 && File is not null;

    /// <summary>The part from <paramref name="start"/>, <paramref name="length"/> bytes long.</summary>
    public FileDataRange Slice(int start, int length)
    {
        if ((uint)start > (uint)Length || (uint)length > (uint)(Length - start))
        {
            throw new ArgumentOutOfRangeException(nameof(start), $"[{start}, +{length}) is outside a range of {Length} bytes");
        }
        return new FileDataRange(File!, FileOffset + start, length);
    }
}
