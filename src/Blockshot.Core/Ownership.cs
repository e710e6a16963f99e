namespace Blockshot.Core;

/// <summary>Whether a node disposes the node it wraps when it is disposed itself.</summary>
public enum Ownership
{
    /// <summary>The wrapped node outlives this one (filters inserted into and removed from a live slot).</summary>
    None,

    /// <summary>Disposing this node disposes the wrapped node.</summary>
    Dispose,
}
