using System.Runtime.InteropServices;

namespace Blockshot.Fuse;

/// <summary>A system call made by the FUSE export or the loop attach failed; <see cref="Errno"/> says why.</summary>
public sealed class SystemCallException : IOException
{
    /// <summary>Creates the exception for <paramref name="what"/> failing with <paramref name="errno"/>.</summary>
    public SystemCallException(string what, int errno)
        : base($"{what}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})")
    {
        Errno = errno;
        HResult = errno;
    }

    /// <summary>The Linux errno value.</summary>
    public int Errno { get; }

    /// <summary>Throws for the errno of the last P/Invoke call.</summary>
    internal static SystemCallException FromLastError(string what) => new(what, Marshal.GetLastPInvokeError());
}
