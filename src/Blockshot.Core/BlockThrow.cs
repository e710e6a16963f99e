using System.Diagnostics.CodeAnalysis;

namespace Blockshot.Core;

/// <summary>Small throw helpers, so hot methods stay small and inlinable.</summary>
public static class BlockThrow
{
    /// <summary>Throws a <see cref="BlockException"/>.</summary>
    [DoesNotReturn]
    public static void Error(BlockError error, string message) => throw new BlockException(error, message);

    /// <summary>Throws <see cref="BlockError.ReadOnly"/>.</summary>
    [DoesNotReturn]
    public static void ReadOnly(string what) => throw new BlockException(BlockError.ReadOnly, $"{what} is read-only");

    /// <summary>Throws <see cref="BlockError.NotSupported"/>.</summary>
    [DoesNotReturn]
    public static void NotSupported(string what) => throw new BlockException(BlockError.NotSupported, $"{what} is not supported");

    /// <summary>Throws <see cref="BlockError.Invalid"/> for a request outside the node.</summary>
    [DoesNotReturn]
    public static void OutOfRange(long offset, long length, long size) =>
        throw new BlockException(BlockError.Invalid, $"request at {offset} of {length} bytes is outside a {size}-byte device");

    /// <summary>Throws <see cref="BlockError.NoSpace"/> for a write past the end.</summary>
    [DoesNotReturn]
    public static void WritePastEnd(long offset, long length, long size) =>
        throw new BlockException(BlockError.NoSpace, $"write at {offset} of {length} bytes runs past the end of a {size}-byte device");

    /// <summary>Wraps an operating-system I/O failure as <see cref="BlockError.Io"/> or <see cref="BlockError.NoSpace"/>.</summary>
    [DoesNotReturn]
    public static void FromIo(IOException e, string what)
    {
        if (e is BlockException)
        {
            throw e;
        }
        var error = IsNoSpace(e) ? BlockError.NoSpace : BlockError.Io;
        throw new BlockException(error, $"{what}: {e.Message}", e);
    }

    private static bool IsNoSpace(IOException e) =>
        (e.HResult & 0xFFFF) == 28 || e.Message.Contains("No space left", StringComparison.Ordinal);
}
