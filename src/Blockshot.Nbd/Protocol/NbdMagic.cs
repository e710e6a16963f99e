namespace Blockshot.Nbd.Protocol;

/// <summary>Magic numbers and fixed sizes of the NBD wire protocol (all integers are big-endian).</summary>
public static class NbdMagic
{
    /// <summary>"NBDMAGIC", the first eight bytes the server sends.</summary>
    public const ulong InitPassword = 0x4e42444d41474943;

    /// <summary>"IHAVEOPT": newstyle negotiation, and the prefix of every option request.</summary>
    public const ulong HaveOptions = 0x49484156454F5054;

    /// <summary>Prefix of every option reply.</summary>
    public const ulong OptionReply = 0x3e889045565a9;

    /// <summary>Prefix of a compact transmission request.</summary>
    public const uint Request = 0x25609513;

    /// <summary>Prefix of a simple reply.</summary>
    public const uint SimpleReply = 0x67446698;

    /// <summary>Prefix of a structured reply chunk.</summary>
    public const uint StructuredReply = 0x668e33ef;

    /// <summary>Bytes in a compact request header.</summary>
    public const int RequestSize = 28;

    /// <summary>Bytes in a simple reply header.</summary>
    public const int SimpleReplySize = 16;

    /// <summary>Bytes in a structured reply chunk header.</summary>
    public const int ChunkHeaderSize = 20;

    /// <summary>Bytes in an option request header (magic, option, length).</summary>
    public const int OptionHeaderSize = 16;

    /// <summary>Bytes in an option reply header (magic, option, type, length).</summary>
    public const int OptionReplyHeaderSize = 20;
}
