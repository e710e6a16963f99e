namespace Blockshot.Qcow2;

/// <summary>Changes <see cref="Qcow2Image.AmendAsync"/> applies; null leaves a setting as it is.</summary>
public sealed record Qcow2AmendOptions
{
    /// <summary>New compatibility level.</summary>
    public Qcow2Compat? Compat { get; init; }

    /// <summary>Turn lazy refcounts on or off.</summary>
    public bool? LazyRefcounts { get; init; }

    /// <summary>New refcount width (1, 2, 4, 8, 16, 32 or 64).</summary>
    public int? RefcountBits { get; init; }

    /// <summary>Change the backing file; use <see cref="RemoveBackingFile"/> to drop it.</summary>
    public string? BackingFile { get; init; }

    /// <summary>Backing format for <see cref="BackingFile"/>.</summary>
    public string? BackingFormat { get; init; }

    /// <summary>Drop the backing file reference.</summary>
    public bool RemoveBackingFile { get; init; }
}
