namespace Blockshot.Core;

/// <summary>
/// A node's features and block sizes, computed once. Block sizes follow NBD's rules: each is a power
/// of two except <see cref="MaxBlockSize"/>, which is a multiple of <see cref="MinBlockSize"/>.
/// </summary>
/// <param name="Features">What the node can do.</param>
/// <param name="MinBlockSize">Smallest request granularity; requests should be aligned to it.</param>
/// <param name="PreferredBlockSize">Granularity below which requests cost a read-modify-write.</param>
/// <param name="MaxBlockSize">Largest single read or write the node accepts.</param>
public sealed record NodeCapabilities(
    NodeFeatures Features,
    int MinBlockSize = 1,
    int PreferredBlockSize = 4096,
    int MaxBlockSize = NodeCapabilities.DefaultMaxBlockSize)
{
    /// <summary>The largest read or write by default: 32 MiB, as NBD clients expect.</summary>
    public const int DefaultMaxBlockSize = 32 << 20;

    /// <summary>True when the node accepts writes.</summary>
    public bool CanWrite => Has(NodeFeatures.Write);

    /// <summary>True when the given feature bits are all present.</summary>
    public bool Has(NodeFeatures features) => (Features & features) == features;

    /// <summary>A copy with the given features removed.</summary>
    public NodeCapabilities Without(NodeFeatures features) => this with { Features = Features & ~features };
}
