namespace Blockshot.Daemon.Protocol;

/// <summary>The blocks of a tracked device that changed after a period.</summary>
public sealed class CbtMap
{
    /// <summary>The device.</summary>
    public string Device { get; init; } = "";

    /// <summary>The generation the map belongs to.</summary>
    public string Generation { get; init; } = "";

    /// <summary>Bytes per tracking block.</summary>
    public int BlockSize { get; init; }

    /// <summary>Changes after this period are listed.</summary>
    public int Since { get; init; }

    /// <summary>The current period.</summary>
    public int Period { get; init; }

    /// <summary>Bytes in the ranges.</summary>
    public long Bytes { get; init; }

    /// <summary>Changed byte ranges, merged, in order.</summary>
    public List<CbtRange> Ranges { get; init; } = [];
}
