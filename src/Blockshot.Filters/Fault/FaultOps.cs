namespace Blockshot.Filters.Fault;

/// <summary>The request kinds a fault rule applies to.</summary>
[Flags]
public enum FaultOps
{
    /// <summary>No request.</summary>
    None = 0,

    /// <summary>Reads (and cache hints).</summary>
    Read = 1,

    /// <summary>Writes.</summary>
    Write = 2,

    /// <summary>Write-zeroes.</summary>
    Zero = 4,

    /// <summary>Trims.</summary>
    Trim = 8,

    /// <summary>Flushes.</summary>
    Flush = 16,

    /// <summary>Every kind above.</summary>
    All = Read | Write | Zero | Trim | Flush,
}
