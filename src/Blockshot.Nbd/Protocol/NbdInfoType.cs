namespace Blockshot.Nbd.Protocol;

/// <summary>Information items of NBD_OPT_INFO and NBD_OPT_GO.</summary>
public enum NbdInfoType : ushort
{
    /// <summary>Size and transmission flags (always sent).</summary>
    Export = 0,

    /// <summary>The canonical export name.</summary>
    Name = 1,

    /// <summary>A human-readable description.</summary>
    Description = 2,

    /// <summary>Minimum, preferred and maximum block sizes.</summary>
    BlockSize = 3,
}
