using Blockshot.Core;

namespace Blockshot.Qcow2.Internal;

/// <summary>
/// The bytes of a guest write: in memory (a client's request), or a range of another file that the
/// image file copies inside the kernel (a whole-image copy by the image tools).
/// </summary>
internal readonly struct WriteData
{
    public WriteData(ReadOnlyMemory<byte> memory)
    {
        Memory = memory;
    }

    public WriteData(FileDataRange file)
    {
        File = file;
    }

    /// <summary>The bytes, when they are in memory.</summary>
    public ReadOnlyMemory<byte> Memory { get; }

    /// <summary>The file range holding the bytes, when they are not in memory.</summary>
    public FileDataRange File { get; }

    public int Length => IsFile ? File.Length : Memory.Length;

    public bool IsFile => File.IsMapped;

    public WriteData Slice(int start, int length) =>
        IsFile ? new WriteData(File.Slice(start, length)) : new WriteData(Memory.Slice(start, length));

    /// <summary>Writes (or copies) the bytes to <paramref name="target"/> at <paramref name="offset"/>.</summary>
    public ValueTask WriteToAsync(ImageFile target, long offset) =>
        IsFile ? target.CopyFromAsync(offset, File) : target.WriteAsync(offset, Memory);
}
