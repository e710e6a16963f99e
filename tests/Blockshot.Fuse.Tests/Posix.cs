using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Blockshot.Fuse.Tests;

/// <summary>System calls the tests make on the mounted file that .NET does not expose.</summary>
internal static partial class Posix
{
    public const int SeekData = 3;
    public const int SeekHole = 4;

    [LibraryImport("libc", EntryPoint = "lseek", SetLastError = true)]
    private static partial long LSeek(int fd, long offset, int whence);

    /// <summary>lseek(2); returns the offset or -errno.</summary>
    public static long Seek(SafeFileHandle handle, long offset, int whence)
    {
        var added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            var r = LSeek((int)handle.DangerousGetHandle(), offset, whence);
            return r >= 0 ? r : -Marshal.GetLastPInvokeError();
        }
        finally
        {
            handle.DangerousRelease();
        }
    }
}
