namespace Blockshot.Daemon.Protocol;

/// <summary>
/// A control request failed with a protocol error: thrown by the daemon's handlers (and sent back as
/// the JSON-RPC error object) and by <see cref="ControlClient"/> when the daemon answers with one.
/// </summary>
public sealed class ControlException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ControlException(int code, string message, Exception? inner = null)
        : base(message, inner)
    {
        Code = code;
    }

    /// <summary>One of <see cref="ControlErrorCodes"/>.</summary>
    public int Code { get; }

    /// <summary>The stable name of <see cref="Code"/>.</summary>
    public string ErrorName => ControlErrorCodes.NameOf(Code);
}
