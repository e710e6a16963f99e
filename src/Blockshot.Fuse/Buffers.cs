using Blockshot.Core.Buffers;

namespace Blockshot.Fuse;

/// <summary>Helpers for pooled buffers.</summary>
internal static class Buffers
{
    /// <summary>Returns <paramref name="buffer"/> to its pool.</summary>
    public static void Return(this PooledBuffer buffer) => ((IDisposable)buffer).Dispose();
}
