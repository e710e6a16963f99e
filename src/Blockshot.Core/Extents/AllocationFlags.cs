namespace Blockshot.Core.Extents;

/// <summary>
/// Flags of the allocation context (NBD <c>base:allocation</c>). Other status contexts define their own
/// values in the same 32-bit field.
/// </summary>
public static class AllocationFlags
{
    /// <summary>Allocated data.</summary>
    public const uint Data = 0;

    /// <summary>Not allocated: reads come from below or as zeros.</summary>
    public const uint Hole = 1;

    /// <summary>Reads as zeros.</summary>
    public const uint Zero = 2;

    /// <summary>Unallocated and reading as zeros: the usual sparse region.</summary>
    public const uint HoleZero = Hole | Zero;
}
