namespace Blockshot.Core;

/// <summary>A block request failed with a <see cref="BlockError"/> the caller can report.</summary>
public sealed class BlockException : IOException
{
    /// <summary>Creates the exception.</summary>
    public BlockException(BlockError error, string message, Exception? inner = null)
        : base(message, inner)
    {
        Error = error;
    }

    /// <summary>The error class, which maps to the errno an export reports.</summary>
    public BlockError Error { get; }

    /// <summary>The Linux errno value of <see cref="Error"/>.</summary>
    public int Errno => (int)Error;
}
