namespace Blockshot.Daemon.Exports;

/// <summary>A running export of one provider.</summary>
internal interface IExportHandle
{
    /// <summary>Clients attached right now.</summary>
    int Clients { get; }

    /// <summary>The file the export is mounted on (FUSE), or null.</summary>
    string? Path { get; }

    /// <summary>The loop device on that file (<c>/dev/loopN</c>), or null.</summary>
    string? LoopDevice { get; }

    /// <summary>Stops the export, disconnecting its clients after their requests in flight finish.</summary>
    Task StopAsync();
}
