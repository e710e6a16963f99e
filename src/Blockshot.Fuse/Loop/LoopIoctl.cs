using System.Text;
using Blockshot.Fuse.Protocol;

namespace Blockshot.Fuse.Loop;

/// <summary>Loop device ioctl numbers, flags and structures (<c>linux/loop.h</c>).</summary>
internal static class LoopIoctl
{
    public const ulong SetFd = 0x4C00;
    public const ulong ClrFd = 0x4C01;
    public const ulong SetStatus64 = 0x4C04;
    public const ulong GetStatus64 = 0x4C05;
    public const ulong SetCapacity = 0x4C07;
    public const ulong SetDirectIo = 0x4C08;
    public const ulong SetBlockSize = 0x4C09;
    public const ulong Configure = 0x4C0A;
    public const ulong CtlGetFree = 0x4C82;

    public const uint FlagReadOnly = 1;
    public const uint FlagAutoClear = 4;
    public const uint FlagPartScan = 8;
    public const uint FlagDirectIo = 16;
}

/// <summary><c>struct loop_info64</c> (232 bytes): the status of a loop device.</summary>
internal readonly record struct LoopInfo64(ulong Device, ulong Inode, ulong Offset, ulong SizeLimit, uint Number, uint Flags, string FileName)
{
    public const int WireSize = 232;
    private const int FileNameOffset = 56;
    private const int NameLength = 64;

    public static LoopInfo64 Read(ReadOnlySpan<byte> s)
    {
        var name = s.Slice(FileNameOffset, NameLength);
        var end = name.IndexOf((byte)0);
        return new(
            Wire.U64(s, 0), Wire.U64(s, 8), Wire.U64(s, 24), Wire.U64(s, 32),
            Wire.U32(s, 40), Wire.U32(s, 52), Encoding.UTF8.GetString(end < 0 ? name : name[..end]));
    }

    public void Write(Span<byte> s)
    {
        s[..WireSize].Clear();
        Wire.Put(s, 0, Device);
        Wire.Put(s, 8, Inode);
        Wire.Put(s, 24, Offset);
        Wire.Put(s, 32, SizeLimit);
        Wire.Put(s, 40, Number);
        Wire.Put(s, 52, Flags);
        var name = Encoding.UTF8.GetBytes(FileName);
        name.AsSpan(0, Math.Min(name.Length, NameLength - 1)).CopyTo(s[FileNameOffset..]);
    }
}

/// <summary><c>struct loop_config</c> (304 bytes): what LOOP_CONFIGURE sets in one call.</summary>
internal readonly record struct LoopConfig(int Fd, uint BlockSize, LoopInfo64 Info)
{
    public const int WireSize = 304;

    public static LoopConfig Read(ReadOnlySpan<byte> s) =>
        new((int)Wire.U32(s, 0), Wire.U32(s, 4), LoopInfo64.Read(s[8..]));

    public void Write(Span<byte> s)
    {
        s[..WireSize].Clear();
        Wire.Put(s, 0, (uint)Fd);
        Wire.Put(s, 4, BlockSize);
        Info.Write(s[8..]);
    }
}
