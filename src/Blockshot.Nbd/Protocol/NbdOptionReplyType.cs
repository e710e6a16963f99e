namespace Blockshot.Nbd.Protocol;

/// <summary>Option reply types; errors have bit 31 set.</summary>
public enum NbdOptionReplyType : uint
{
    /// <summary>The option succeeded (or a list ended).</summary>
    Ack = 1,

    /// <summary>One export in a list.</summary>
    Server = 2,

    /// <summary>One piece of export information.</summary>
    Info = 3,

    /// <summary>One metadata context.</summary>
    MetaContext = 4,

    /// <summary>The option is unknown.</summary>
    ErrUnsupported = 0x80000001,

    /// <summary>Server policy forbids the option.</summary>
    ErrPolicy = 0x80000002,

    /// <summary>The option is malformed.</summary>
    ErrInvalid = 0x80000003,

    /// <summary>The server cannot do it on this platform.</summary>
    ErrPlatform = 0x80000004,

    /// <summary>TLS is required first.</summary>
    ErrTlsRequired = 0x80000005,

    /// <summary>The export does not exist.</summary>
    ErrUnknown = 0x80000006,

    /// <summary>The server is shutting down.</summary>
    ErrShutdown = 0x80000007,

    /// <summary>The client must ask for block sizes.</summary>
    ErrBlockSizeRequired = 0x80000008,

    /// <summary>The request is too big.</summary>
    ErrTooBig = 0x80000009,
}
