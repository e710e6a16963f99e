namespace Blockshot.Fuse;

/// <summary>Why a FUSE export stopped serving.</summary>
public enum FuseExportEndReason
{
    /// <summary>It was disposed.</summary>
    Stopped,

    /// <summary>The file was unmounted from outside (or the connection aborted).</summary>
    Unmounted,

    /// <summary>Reading or writing the FUSE device failed; see <see cref="FuseExportEndedEventArgs.Fault"/>.</summary>
    Failed,
}

/// <summary>Raised by <see cref="FuseExport.Ended"/>.</summary>
public sealed class FuseExportEndedEventArgs(FuseExportEndReason reason, Exception? fault) : EventArgs
{
    /// <summary>Why the export stopped.</summary>
    public FuseExportEndReason Reason { get; } = reason;

    /// <summary>The failure, when <see cref="Reason"/> is <see cref="FuseExportEndReason.Failed"/>.</summary>
    public Exception? Fault { get; } = fault;
}
