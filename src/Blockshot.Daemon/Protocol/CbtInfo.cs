namespace Blockshot.Daemon.Protocol;

/// <summary>A device's change tracking.</summary>
public sealed class CbtInfo
{
    /// <summary>The device.</summary>
    public string Device { get; init; } = "";

    /// <summary>The generation: an incremental backup must start from a backup of the same generation.</summary>
    public string Generation { get; init; } = "";

    /// <summary>Why the generation began.</summary>
    public string GenerationReason { get; init; } = "";

    /// <summary>Bytes per tracking block.</summary>
    public int BlockSize { get; init; }

    /// <summary>The current period: writes now are marked with it; the next snapshot ends it.</summary>
    public int Period { get; init; }

    /// <summary>Blocks changed since the generation began.</summary>
    public long ChangedBlocks { get; init; }

    /// <summary>Blocks changed in the current period.</summary>
    public long ChangedInPeriod { get; init; }

    /// <summary>Memory of the map.</summary>
    public long MapBytes { get; init; }

    /// <summary>The sidecar file, or null when tracking is in memory only.</summary>
    public string? Sidecar { get; init; }

    /// <summary>Why the sidecar stopped vouching (a write failed), when it did.</summary>
    public string? PersistenceProblem { get; init; }

    /// <summary>The persistent bitmap in the qcow2 image that holds the generation's changes, when kept there.</summary>
    public string? Qcow2Bitmap { get; init; }
}
