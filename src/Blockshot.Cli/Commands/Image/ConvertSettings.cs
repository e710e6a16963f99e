namespace Blockshot.Cli.Commands.Image;

/// <summary>How <see cref="Converter"/> copies.</summary>
internal sealed record ConvertSettings
{
    /// <summary>Requests in flight (the reference tool's <c>-m</c>, default 8).</summary>
    public int Parallel { get; init; } = 8;

    /// <summary>Largest data request, and the alignment of data requests.</summary>
    public int ChunkBytes { get; init; } = 2 << 20;

    /// <summary>
    /// Zero runs inside data at least this long (in whole blocks of this size) are not written (the
    /// reference tool's <c>-S</c>, default 4 KiB); 0 writes everything as data.
    /// </summary>
    public int MinSparse { get; init; } = 4096;

    /// <summary>The target already reads as zeros (a new image): zero runs need no request.</summary>
    public bool TargetIsZero { get; init; }

    /// <summary>Write compressed clusters (the target is a qcow2 node).</summary>
    public bool Compress { get; init; }

    /// <summary>Consult the source's allocation (off with <c>-S 0</c>: everything is read and written).</summary>
    public bool UseExtents { get; init; } = true;

    /// <summary>
    /// Copy data file to file inside the kernel where the source maps it and the target takes it
    /// (copy_file_range; reflinks where the file system shares blocks), instead of through a buffer: the
    /// reference tool's <c>-C</c>, off by default as there.
    /// </summary>
    public bool CopyOffload { get; init; }

    /// <summary>Flush the target at the end (cache mode writeback); unsafe leaves it to the host.</summary>
    public bool Flush { get; init; }
}
