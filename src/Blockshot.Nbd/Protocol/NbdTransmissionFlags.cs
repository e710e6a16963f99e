namespace Blockshot.Nbd.Protocol;

/// <summary>Per-export transmission flags sent at the end of negotiation.</summary>
[Flags]
public enum NbdTransmissionFlags : ushort
{
    /// <summary>No flags.</summary>
    None = 0,

    /// <summary>Always set.</summary>
    HasFlags = 1 << 0,

    /// <summary>The export refuses writes.</summary>
    ReadOnly = 1 << 1,

    /// <summary>FLUSH is supported.</summary>
    SendFlush = 1 << 2,

    /// <summary>The FUA flag is supported.</summary>
    SendFua = 1 << 3,

    /// <summary>Seeks are costly.</summary>
    Rotational = 1 << 4,

    /// <summary>TRIM is supported.</summary>
    SendTrim = 1 << 5,

    /// <summary>WRITE_ZEROES is supported.</summary>
    SendWriteZeroes = 1 << 6,

    /// <summary>The DF flag on READ is supported (structured replies only).</summary>
    SendDf = 1 << 7,

    /// <summary>Several connections see each other's flushed writes.</summary>
    CanMultiConn = 1 << 8,

    /// <summary>RESIZE is supported.</summary>
    SendResize = 1 << 9,

    /// <summary>CACHE is supported.</summary>
    SendCache = 1 << 10,

    /// <summary>The FAST_ZERO flag on WRITE_ZEROES is supported.</summary>
    SendFastZero = 1 << 11,
}
