using System.Runtime.InteropServices;

namespace Blockshot.Qcow2.Internal;

/// <summary>Zstandard through the system library (libzstd.so.1).</summary>
internal static unsafe partial class Zstd
{
    private const string Library = "libzstd.so.1";

    /// <summary>The level used for compressed clusters (the library default).</summary>
    public const int DefaultLevel = 3;

    [ThreadStatic]
    private static nint _threadDctx;

    [StructLayout(LayoutKind.Sequential)]
    private struct InBuffer
    {
        public byte* Src;
        public nuint Size;
        public nuint Pos;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct OutBuffer
    {
        public byte* Dst;
        public nuint Size;
        public nuint Pos;
    }

    [LibraryImport(Library)]
    private static partial nuint ZSTD_compress(byte* dst, nuint dstCapacity, byte* src, nuint srcSize, int level);

    [LibraryImport(Library)]
    private static partial uint ZSTD_isError(nuint code);

    [LibraryImport(Library)]
    private static partial nint ZSTD_createDCtx();

    [LibraryImport(Library)]
    private static partial nuint ZSTD_DCtx_reset(nint dctx, int directive);

    [LibraryImport(Library)]
    private static partial nuint ZSTD_decompressStream(nint dctx, OutBuffer* output, InBuffer* input);

    /// <summary>True when the library can be loaded.</summary>
    public static bool IsAvailable { get; } = NativeLibrary.TryLoad(Library, out _);

    /// <summary>Compresses into <paramref name="destination"/>; returns the length, or -1 when it does not fit.</summary>
    public static int Compress(ReadOnlySpan<byte> source, Span<byte> destination, int level = DefaultLevel)
    {
        fixed (byte* src = source)
        fixed (byte* dst = destination)
        {
            var n = ZSTD_compress(dst, (nuint)destination.Length, src, (nuint)source.Length, level);
            return ZSTD_isError(n) != 0 ? -1 : (int)n;
        }
    }

    /// <summary>
    /// Decompresses until <paramref name="destination"/> is full, ignoring input after that; returns
    /// false when the input is damaged or ends early.
    /// </summary>
    public static bool DecompressExact(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        if (_threadDctx == 0)
        {
            _threadDctx = ZSTD_createDCtx();
            if (_threadDctx == 0)
            {
                return false;
            }
        }
        var dctx = _threadDctx;
        ZSTD_DCtx_reset(dctx, 1);
        fixed (byte* src = source)
        fixed (byte* dst = destination)
        {
            var input = new InBuffer { Src = src, Size = (nuint)source.Length, Pos = 0 };
            var output = new OutBuffer { Dst = dst, Size = (nuint)destination.Length, Pos = 0 };
            nuint ret = 0;
            while (output.Pos < output.Size)
            {
                var lastIn = input.Pos;
                var lastOut = output.Pos;
                ret = ZSTD_decompressStream(dctx, &output, &input);
                if (ZSTD_isError(ret) != 0)
                {
                    return false;
                }
                if (input.Pos <= lastIn && output.Pos <= lastOut)
                {
                    return false;
                }
            }
            // A frame still expecting data means the stored cluster is larger than a cluster.
            return ret == 0;
        }
    }
}
