namespace Blockshot.Nbd;

/// <summary>Protocol limits the server enforces.</summary>
public static class NbdLimits
{
    /// <summary>Longest export name or metadata context query, in bytes (as the protocol recommends).</summary>
    public const int MaxNameLength = 4096;

    /// <summary>Longest option payload accepted during the handshake.</summary>
    public const int MaxOptionLength = 64 << 10;

    /// <summary>Most extents sent for one context in one BLOCK_STATUS reply.</summary>
    public const int MaxExtentsPerReply = 1 << 16;
}
