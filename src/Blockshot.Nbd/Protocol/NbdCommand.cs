namespace Blockshot.Nbd.Protocol;

/// <summary>Transmission commands.</summary>
public enum NbdCommand : ushort
{
    /// <summary>Read data.</summary>
    Read = 0,

    /// <summary>Write data.</summary>
    Write = 1,

    /// <summary>Disconnect after outstanding requests.</summary>
    Disconnect = 2,

    /// <summary>Make completed writes durable.</summary>
    Flush = 3,

    /// <summary>Discard a range.</summary>
    Trim = 4,

    /// <summary>Prefetch a range.</summary>
    Cache = 5,

    /// <summary>Zero a range.</summary>
    WriteZeroes = 6,

    /// <summary>Query metadata contexts.</summary>
    BlockStatus = 7,
}
