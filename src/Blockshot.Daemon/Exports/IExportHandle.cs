namespace Blockshot.Daemon.Exports;

/// <summary>A running export of one provider.</summary>
internal interface IExportHandle
{
    /// <summary>Clients attached right now.</summary>
    int Clients { get; }

    /// <summary>Stops the export, disconnecting its clients after their requests in flight finish.</summary>
    Task StopAsync();
}
