using Blockshot.Core;

namespace Blockshot.Nbd.Internal;

/// <summary>Maps failures to the error values the protocol allows.</summary>
internal static class NbdErrors
{
    public const uint Perm = 1;
    public const uint Io = 5;
    public const uint NoMemory = 12;
    public const uint Invalid = 22;
    public const uint NoSpace = 28;
    public const uint Overflow = 75;
    public const uint NotSupported = 95;
    public const uint Shutdown = 108;

    /// <summary>The NBD error for a block error; NotSupported is only allowed for fast zeroing.</summary>
    public static uint From(BlockError error, bool fastZero) => error switch
    {
        BlockError.ReadOnly => Perm,
        BlockError.Io => Io,
        BlockError.NoMemory => NoMemory,
        BlockError.Invalid => Invalid,
        BlockError.NoSpace => NoSpace,
        BlockError.Overflow => Overflow,
        BlockError.NotSupported => fastZero ? NotSupported : Invalid,
        BlockError.Shutdown => Shutdown,
        BlockError.AccessDenied => Io,
        _ => Io,
    };
}
