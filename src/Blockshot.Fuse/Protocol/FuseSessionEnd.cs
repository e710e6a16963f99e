namespace Blockshot.Fuse.Protocol;

/// <summary>Why a <see cref="FuseSession"/> stopped serving.</summary>
internal enum FuseSessionEnd
{
    /// <summary>Still serving.</summary>
    None,

    /// <summary>The owner asked it to stop.</summary>
    Stopped,

    /// <summary>The filesystem was unmounted or the connection aborted (the device read ENODEV).</summary>
    Unmounted,

    /// <summary>The kernel sent DESTROY.</summary>
    Destroyed,

    /// <summary>A device read or write failed unexpectedly; see <see cref="FuseSession.Fault"/>.</summary>
    Failed,
}
