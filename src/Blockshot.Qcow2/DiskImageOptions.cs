namespace Blockshot.Qcow2;

/// <summary>How <see cref="DiskImage.OpenAsync"/> opens an image file or block device.</summary>
public sealed record DiskImageOptions
{
    /// <summary>"raw" or "qcow2"; null detects the format from the first bytes.</summary>
    public string? Format { get; init; }

    /// <summary>Open read-only.</summary>
    public bool ReadOnly { get; init; }

    /// <summary>Bypass the page cache (O_DIRECT); raw images only.</summary>
    public bool Direct { get; init; }

    /// <summary>Take the qemu-compatible image locks (default); off is force-share.</summary>
    public bool Locking { get; init; } = true;

    /// <summary>qcow2 only: open the backing chain (default).</summary>
    public bool OpenBacking { get; init; } = true;
}
