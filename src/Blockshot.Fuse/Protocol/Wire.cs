using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Blockshot.Fuse.Protocol;

/// <summary>
/// Reads and writes the fields of kernel structures. FUSE structures are in the host's byte order and
/// laid out as the kernel's C structs, so every field is read at its offset in native order.
/// </summary>
internal static class Wire
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort U16(ReadOnlySpan<byte> s, int offset) => MemoryMarshal.Read<ushort>(s[offset..]);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint U32(ReadOnlySpan<byte> s, int offset) => MemoryMarshal.Read<uint>(s[offset..]);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int I32(ReadOnlySpan<byte> s, int offset) => MemoryMarshal.Read<int>(s[offset..]);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong U64(ReadOnlySpan<byte> s, int offset) => MemoryMarshal.Read<ulong>(s[offset..]);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Put(Span<byte> s, int offset, ushort value) => MemoryMarshal.Write(s[offset..], in value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Put(Span<byte> s, int offset, uint value) => MemoryMarshal.Write(s[offset..], in value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Put(Span<byte> s, int offset, int value) => MemoryMarshal.Write(s[offset..], in value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Put(Span<byte> s, int offset, ulong value) => MemoryMarshal.Write(s[offset..], in value);
}
