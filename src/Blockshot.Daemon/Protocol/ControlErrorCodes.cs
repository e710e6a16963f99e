namespace Blockshot.Daemon.Protocol;

/// <summary>
/// The error codes of the control protocol: JSON-RPC's own, and the daemon's in the range JSON-RPC
/// leaves to servers (-32000 to -32099). Each has a stable name carried in the error's
/// <c>data.error</c>. The values are frozen: clients and scripts depend on them.
/// </summary>
public static class ControlErrorCodes
{
    /// <summary>The line is not valid JSON.</summary>
    public const int ParseError = -32700;

    /// <summary>Valid JSON but not a JSON-RPC 2.0 request.</summary>
    public const int InvalidRequest = -32600;

    /// <summary>No such method.</summary>
    public const int MethodNotFound = -32601;

    /// <summary>A parameter is missing, unknown, of the wrong type or out of range.</summary>
    public const int InvalidParams = -32602;

    /// <summary>The daemon failed unexpectedly; the message says how. It keeps serving.</summary>
    public const int InternalError = -32603;

    /// <summary>A named device, export, filter, job or file does not exist.</summary>
    public const int NotFound = -32001;

    /// <summary>The name is taken.</summary>
    public const int AlreadyExists = -32002;

    /// <summary>The object is in use (exported, used by a job); retry with force, or stop the user first.</summary>
    public const int InUse = -32003;

    /// <summary>An image is locked by another writer.</summary>
    public const int Locked = -32004;

    /// <summary>The daemon may not open a file or device as asked.</summary>
    public const int PermissionDenied = -32005;

    /// <summary>An image format is unknown, unsupported or corrupt.</summary>
    public const int BadImage = -32006;

    /// <summary>The feature is not available in this build (e.g. FUSE exports before their library lands).</summary>
    public const int NotAvailable = -32007;

    /// <summary>The object is not in a state that allows this (resume of a running device, pause of a finished job).</summary>
    public const int InvalidState = -32008;

    /// <summary>The operation did not finish in time (e.g. a drain); nothing was changed.</summary>
    public const int Timeout = -32009;

    /// <summary>An I/O error.</summary>
    public const int IoError = -32010;

    /// <summary>The daemon is shutting down.</summary>
    public const int ShuttingDown = -32011;

    /// <summary>Every code with its name and meaning.</summary>
    public static IReadOnlyList<(int Code, string Name, string Meaning)> All { get; } =
    [
        (ParseError, "parse-error", "the line is not valid JSON"),
        (InvalidRequest, "invalid-request", "not a JSON-RPC 2.0 request object"),
        (MethodNotFound, "method-not-found", "no such method"),
        (InvalidParams, "invalid-params", "a parameter is missing, unknown, of the wrong type or out of range"),
        (InternalError, "internal-error", "the daemon failed unexpectedly; it keeps serving"),
        (NotFound, "not-found", "a named device, export, filter, job or file does not exist"),
        (AlreadyExists, "already-exists", "the name is taken"),
        (InUse, "in-use", "the object is in use (exported, used by a job)"),
        (Locked, "locked", "an image is locked by another writer"),
        (PermissionDenied, "permission-denied", "the daemon may not open a file or device as asked"),
        (BadImage, "bad-image", "the image format is unknown, unsupported or corrupt"),
        (NotAvailable, "not-available", "the feature is not available in this build"),
        (InvalidState, "invalid-state", "the object is not in a state that allows this"),
        (Timeout, "timeout", "the operation did not finish in time; nothing was changed"),
        (IoError, "io-error", "an I/O error"),
        (ShuttingDown, "shutting-down", "the daemon is shutting down"),
    ];

    /// <summary>The stable name of <paramref name="code"/>, or <c>error</c> for an unknown code.</summary>
    public static string NameOf(int code)
    {
        foreach (var (c, name, _) in All)
        {
            if (c == code)
            {
                return name;
            }
        }
        return "error";
    }
}
