namespace Blockshot.Drivers;

/// <summary>An image file or block device could not be opened; <see cref="Reason"/> says why.</summary>
public sealed class ImageOpenException : IOException
{
    /// <summary>Creates the exception.</summary>
    public ImageOpenException(ImageOpenError reason, string path, string message, int errno = 0, Exception? inner = null)
        : base(message, inner)
    {
        Reason = reason;
        Path = path;
        Errno = errno;
    }

    /// <summary>Why the open failed.</summary>
    public ImageOpenError Reason { get; }

    /// <summary>The path that was being opened.</summary>
    public string Path { get; }

    /// <summary>The errno behind the failure, or 0 when there is none (a lock conflict, a wrong file type).</summary>
    public int Errno { get; }
}
