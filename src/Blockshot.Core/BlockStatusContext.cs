using Blockshot.Core.Extents;

namespace Blockshot.Core;

/// <summary>
/// A named block-status context beyond allocation, such as an allocation depth, a dirty bitmap or a
/// copy order. Exports list and query contexts through the node they serve, without knowing which
/// subsystem produced them.
/// </summary>
public abstract class BlockStatusContext
{
    /// <summary>The context's full name, e.g. <c>qemu:allocation-depth</c>.</summary>
    public abstract string Name { get; }

    /// <summary>
    /// Appends runs describing <c>[offset, offset + length)</c> to <paramref name="extents"/>, which the
    /// caller has reset to that range. At least one run must be added.
    /// </summary>
    public abstract ValueTask QueryAsync(long offset, long length, ExtentList extents);
}
