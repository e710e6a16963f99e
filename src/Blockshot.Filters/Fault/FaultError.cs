namespace Blockshot.Filters.Fault;

/// <summary>What a matched request fails with.</summary>
public enum FaultError
{
    /// <summary>Nothing: the request only waits for the rule's delay, then proceeds.</summary>
    None,

    /// <summary>An I/O error (EIO).</summary>
    Io,

    /// <summary>No space left (ENOSPC).</summary>
    NoSpace,
}
