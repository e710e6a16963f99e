using Microsoft.Win32.SafeHandles;

namespace Blockshot.Core;

/// <summary>
/// A range of a node's data that sits, byte for byte, in the page cache of a file: what a server can send
/// to a client straight from the cache (sendfile) instead of copying it through a buffer. It holds a
/// reference on the file's handle, so the file stays open until <see cref="Release"/>, even if the node is
/// closed meanwhile. The data is taken when it is sent, not when the range is mapped, so it is only fit
/// for a read that is still in flight then.
/// </summary>
public readonly struct CachedFileRange
{
    /// <summary>Wraps a handle the caller has already added a reference to.</summary>
    public CachedFileRange(SafeFileHandle file, long fileOffset, int length)
    {
        File = file;
        FileOffset = fileOffset;
        Length = length;
    }

    /// <summary>The file whose page cache holds the data.</summary>
    public SafeFileHandle File { get; }

    /// <summary>Where the data starts in the file.</summary>
    public long FileOffset { get; }

    /// <summary>Byte count.</summary>
    public int Length { get; }

    /// <summary>Gives the reference on the file's handle back; once per range.</summary>
    public void Release() => File.DangerousRelease();
}
