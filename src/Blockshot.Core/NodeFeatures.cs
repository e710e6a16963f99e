namespace Blockshot.Core;

/// <summary>What a node can do. Computed once per node and cached.</summary>
[Flags]
public enum NodeFeatures
{
    /// <summary>Read only, nothing else.</summary>
    None = 0,

    /// <summary>Accepts writes.</summary>
    Write = 1 << 0,

    /// <summary>Flush makes written data durable (otherwise it is a no-op).</summary>
    Flush = 1 << 1,

    /// <summary>Honours <see cref="IoFlags.Fua"/> natively.</summary>
    Fua = 1 << 2,

    /// <summary>Trim frees space (otherwise it is ignored).</summary>
    Trim = 1 << 3,

    /// <summary>Write-zeroes is efficient (not emulated by writing zero buffers).</summary>
    WriteZeroes = 1 << 4,

    /// <summary>Write-zeroes with <see cref="IoFlags.FastZero"/> can succeed.</summary>
    FastZero = 1 << 5,

    /// <summary>Extents report real allocation (otherwise everything reads as allocated data).</summary>
    Extents = 1 << 6,

    /// <summary>Several connections may share this node and see each other's flushed writes.</summary>
    MultiConn = 1 << 7,

    /// <summary>Cache (prefetch) requests do something useful.</summary>
    Cache = 1 << 8,

    /// <summary>The node can change size.</summary>
    Resize = 1 << 9,

    /// <summary>The medium is rotational (seeks are costly).</summary>
    Rotational = 1 << 10,
}
