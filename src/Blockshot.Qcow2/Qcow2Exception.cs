using System.Diagnostics.CodeAnalysis;
using Blockshot.Core;

namespace Blockshot.Qcow2;

/// <summary>
/// Throw helpers for qcow2 failures. Every failure is a <see cref="BlockException"/> whose message starts
/// with "qcow2:" and whose error class says what a caller can do about it.
/// </summary>
internal static class Qcow2Error
{
    /// <summary>The image is malformed (EINVAL).</summary>
    [DoesNotReturn]
    public static void Invalid(string message) => throw InvalidException(message);

    /// <summary>A malformed-image exception, for expression contexts.</summary>
    public static BlockException InvalidException(string message) => new(BlockError.Invalid, "qcow2: " + message);

    /// <summary>The image uses something this implementation does not support (ENOTSUP).</summary>
    [DoesNotReturn]
    public static void Unsupported(string message) => throw new BlockException(BlockError.NotSupported, "qcow2: " + message);

    /// <summary>Metadata found corrupt during I/O (EIO).</summary>
    [DoesNotReturn]
    public static void Corrupt(string message) => throw CorruptException(message);

    /// <summary>A corrupt-metadata exception, for expression contexts.</summary>
    public static BlockException CorruptException(string message) => new(BlockError.Io, "qcow2: " + message);

    /// <summary>The operation is refused in the image's state (EACCES).</summary>
    [DoesNotReturn]
    public static void Refused(string message) => throw new BlockException(BlockError.AccessDenied, "qcow2: " + message);

    /// <summary>A bad argument to an image operation (EINVAL).</summary>
    [DoesNotReturn]
    public static void Argument(string message) => throw new BlockException(BlockError.Invalid, "qcow2: " + message);
}
