using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Blockshot.Daemon.Control;

/// <summary>Binding a Unix socket that only its owner may use, and replacing stale socket files.</summary>
internal static partial class UnixSocketFile
{
    /// <summary>
    /// Binds and listens on <paramref name="path"/> with mode 0600: the process umask is narrowed around
    /// the bind, so the socket never exists with wider permissions. A stale socket left by a dead daemon
    /// is replaced; a live one, or another kind of file, is an error.
    /// </summary>
    public static Socket ListenPrivate(string path, int backlog = 64)
    {
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("the control socket needs Unix file modes");
        }
        var directory = Path.GetDirectoryName(path);
        if (!string.IsNullOrEmpty(directory) && !Directory.Exists(directory))
        {
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        }
        if (File.Exists(path) || Directory.Exists(path))
        {
            if (!IsSocket(path))
            {
                throw new IOException($"{path} exists and is not a socket");
            }
            if (IsLive(path))
            {
                throw new IOException($"{path} is in use: another daemon is listening there");
            }
            File.Delete(path);
        }
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        var previous = umask(0x7F); // 0177: sockets are created 0600
        try
        {
            socket.Bind(new UnixDomainSocketEndPoint(path));
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        finally
        {
            umask(previous);
        }
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        socket.Listen(backlog);
        return socket;
    }

    /// <summary>True when something accepts connections on the socket at <paramref name="path"/>.</summary>
    public static bool IsLive(string path)
    {
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>True when <paramref name="path"/> is a Unix domain socket (not following symlinks).</summary>
    public static unsafe bool IsSocket(string path)
    {
        // struct stat: st_mode is a u32 at offset 24 on x86_64 and 16 on aarch64.
        var modeOffset = RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 16 : 24;
        var buffer = stackalloc byte[256];
        if (lstat(path, buffer) != 0)
        {
            return false;
        }
        return (*(uint*)(buffer + modeOffset) & 0xF000) == 0xC000;
    }

    [LibraryImport("libc", EntryPoint = "lstat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial int lstat(string path, byte* buffer);

    [LibraryImport("libc", EntryPoint = "umask")]
    private static partial uint umask(uint mask);
}
