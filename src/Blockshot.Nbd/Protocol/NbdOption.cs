namespace Blockshot.Nbd.Protocol;

/// <summary>Option requests of the fixed newstyle handshake.</summary>
public enum NbdOption : uint
{
    /// <summary>Choose an export and enter transmission (no way to report errors).</summary>
    ExportName = 1,

    /// <summary>End the session.</summary>
    Abort = 2,

    /// <summary>List exports.</summary>
    List = 3,

    /// <summary>Upgrade to TLS.</summary>
    StartTls = 5,

    /// <summary>Describe an export.</summary>
    Info = 6,

    /// <summary>Describe an export and enter transmission.</summary>
    Go = 7,

    /// <summary>Use structured replies.</summary>
    StructuredReply = 8,

    /// <summary>List metadata contexts.</summary>
    ListMetaContext = 9,

    /// <summary>Select metadata contexts.</summary>
    SetMetaContext = 10,

    /// <summary>Use 64-bit extended headers.</summary>
    ExtendedHeaders = 11,
}
