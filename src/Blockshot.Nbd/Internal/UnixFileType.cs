using System.Runtime.InteropServices;

namespace Blockshot.Nbd.Internal;

/// <summary>File-type checks the base library does not offer.</summary>
internal static partial class UnixFileType
{
    private const uint TypeMask = 0xF000;
    private const uint Socket = 0xC000;

    // struct stat on x86_64 and aarch64 Linux is at most 144 bytes; st_mode is a u32 at offset 24
    // on x86_64 and 16 on aarch64.
    private static readonly int ModeOffset = RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 16 : 24;

    /// <summary>True when <paramref name="path"/> is a Unix domain socket (not following symlinks).</summary>
    public static unsafe bool IsSocket(string path)
    {
        var buffer = stackalloc byte[256];
        if (lstat(path, buffer) != 0)
        {
            return false;
        }
        var mode = *(uint*)(buffer + ModeOffset);
        return (mode & TypeMask) == Socket;
    }

    [LibraryImport("libc", EntryPoint = "lstat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial int lstat(string path, byte* buffer);
}
