namespace Blockshot.Daemon.Protocol;

/// <summary>An export type and whether this build provides it.</summary>
public sealed class ExportTypeInfo
{
    /// <summary>The type name (<c>nbd</c>, <c>fuse</c>).</summary>
    public string Type { get; init; } = "";

    /// <summary>True when exports of this type can be added.</summary>
    public bool Available { get; init; }

    /// <summary>Why not, when unavailable.</summary>
    public string? Reason { get; init; }
}
