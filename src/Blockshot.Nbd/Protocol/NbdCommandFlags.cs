namespace Blockshot.Nbd.Protocol;

/// <summary>Per-request command flags.</summary>
[Flags]
public enum NbdCommandFlags : ushort
{
    /// <summary>No flags.</summary>
    None = 0,

    /// <summary>Force unit access.</summary>
    Fua = 1 << 0,

    /// <summary>WRITE_ZEROES must not deallocate.</summary>
    NoHole = 1 << 1,

    /// <summary>READ must come back as one chunk.</summary>
    DontFragment = 1 << 2,

    /// <summary>BLOCK_STATUS must return exactly one extent.</summary>
    ReqOne = 1 << 3,

    /// <summary>WRITE_ZEROES must fail rather than be slow.</summary>
    FastZero = 1 << 4,

    /// <summary>The request carries a payload length (extended headers only).</summary>
    PayloadLength = 1 << 5,
}
