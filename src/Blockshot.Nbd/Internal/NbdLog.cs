using Microsoft.Extensions.Logging;

namespace Blockshot.Nbd.Internal;

/// <summary>The server's log messages, with stable event ids (1xx control path, 2xx data path).</summary>
internal static partial class NbdLog
{
    [LoggerMessage(100, LogLevel.Information, "listening on {Endpoint}")]
    public static partial void Listening(ILogger logger, string endpoint);

    [LoggerMessage(101, LogLevel.Debug, "connection {Id} from {Remote} accepted")]
    public static partial void Accepted(ILogger logger, long id, string remote);

    [LoggerMessage(102, LogLevel.Information, "connection {Id} from {Remote} attached to export '{Export}'")]
    public static partial void Attached(ILogger logger, long id, string remote, string export);

    [LoggerMessage(103, LogLevel.Information, "connection {Id} closed: {Reason}")]
    public static partial void Closed(ILogger logger, long id, string reason);

    [LoggerMessage(104, LogLevel.Warning, "connection {Id}: handshake failed: {Reason}")]
    public static partial void HandshakeFailed(ILogger logger, long id, string reason);

    [LoggerMessage(105, LogLevel.Warning, "accept on {Endpoint} failed")]
    public static partial void AcceptFailed(ILogger logger, string endpoint, Exception exception);

    [LoggerMessage(106, LogLevel.Warning, "could not set a {Bytes}-byte socket send buffer; large replies go out in pieces: {Reason}")]
    public static partial void SendBufferRefused(ILogger logger, int bytes, string reason);

    [LoggerMessage(107, LogLevel.Error, "connection {Id} ended by an unexpected error; the server goes on")]
    public static partial void ConnectionCrashed(ILogger logger, long id, Exception exception);

    [LoggerMessage(108, LogLevel.Warning, "connection {Id}: sending cached file data at {Offset}+{Length} failed ({Reason}); the connection is ended, as its reply header had already gone out")]
    public static partial void ZeroCopySendFailed(ILogger logger, long id, long offset, int length, string reason);

    [LoggerMessage(200, LogLevel.Warning, "connection {Id}: {Command} at {Offset}+{Length} failed with an unexpected error")]
    public static partial void RequestCrashed(ILogger logger, long id, string command, ulong offset, uint length, Exception exception);

    [LoggerMessage(201, LogLevel.Warning, "connection {Id}: protocol error: {Reason}")]
    public static partial void ProtocolError(ILogger logger, long id, string reason);

    [LoggerMessage(202, LogLevel.Debug, "connection {Id}: {Command} at {Offset}+{Length} failed: {Message}")]
    public static partial void RequestFailed(ILogger logger, long id, string command, ulong offset, uint length, string message);
}
