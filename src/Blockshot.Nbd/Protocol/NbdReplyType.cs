namespace Blockshot.Nbd.Protocol;

/// <summary>Structured reply chunk types.</summary>
public enum NbdReplyType : ushort
{
    /// <summary>No payload; only ends a reply.</summary>
    None = 0,

    /// <summary>Data at an offset.</summary>
    OffsetData = 1,

    /// <summary>A range that reads as zeros.</summary>
    OffsetHole = 2,

    /// <summary>Extents of one metadata context.</summary>
    BlockStatus = 5,

    /// <summary>An error with a message.</summary>
    Error = 0x8001,

    /// <summary>An error at an offset, with a message.</summary>
    ErrorOffset = 0x8002,
}
