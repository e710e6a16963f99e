namespace Blockshot.Daemon.Protocol;

/// <summary>A changed byte range.</summary>
public sealed class CbtRange
{
    /// <summary>Start, in bytes.</summary>
    public long Offset { get; init; }

    /// <summary>Length, in bytes.</summary>
    public long Length { get; init; }
}
