using System.Diagnostics;
using System.Globalization;
using Blockshot.Fuse.Native;

namespace Blockshot.Fuse.Mounting;

/// <summary>
/// Mounting without privileges through the setuid helper <c>fusermount3</c>: it opens /dev/fuse, mounts
/// it, and sends the descriptor back over a Unix socket named by the <c>_FUSE_COMMFD</c> environment
/// variable (one SCM_RIGHTS message). It computes <c>rootmode</c>, <c>user_id</c> and <c>group_id</c> itself.
/// </summary>
internal static unsafe class Fusermount
{
    private const string Tool = "fusermount3";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    /// <summary>True when the helper is on the PATH (or in /usr/bin or /bin).</summary>
    public static string? Find()
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries).Append("/usr/bin").Append("/bin"))
        {
            var candidate = Path.Combine(dir, Tool);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        return null;
    }

    /// <summary>Mounts <paramref name="target"/> with <paramref name="options"/> (comma-separated) and returns the /dev/fuse descriptor.</summary>
    public static int Mount(string target, string options)
    {
        var tool = Find() ?? throw new InvalidOperationException($"{Tool} is not installed (package fuse3); it is needed to mount without root");
        var pair = stackalloc int[2];
        if (Libc.SocketPair(Libc.AfUnix, Libc.SockStream | Libc.SockCloExec, 0, pair) != 0)
        {
            throw SystemCallException.FromLastError("socketpair");
        }
        var ours = pair[0];
        var theirs = pair[1];
        try
        {
            // The helper's end must survive exec; ours must not leak into other children.
            if (Libc.Fcntl(theirs, Libc.FSetFd, 0) != 0)
            {
                throw SystemCallException.FromLastError("fcntl(FD_CLOEXEC)");
            }
            var start = new ProcessStartInfo(tool)
            {
                RedirectStandardError = true,
                RedirectStandardOutput = true,
                UseShellExecute = false,
            };
            start.ArgumentList.Add("-o");
            start.ArgumentList.Add(options);
            start.ArgumentList.Add("--");
            start.ArgumentList.Add(target);
            start.Environment["_FUSE_COMMFD"] = theirs.ToString(CultureInfo.InvariantCulture);
            var (exit, error) = Run(start);
            Libc.CloseQuietly(theirs);
            theirs = -1;
            if (exit != 0)
            {
                throw new IOException($"{Tool} failed to mount {target} (exit {exit}): {error.Trim()}");
            }
            return ReceiveDescriptor(ours);
        }
        finally
        {
            Libc.CloseQuietly(theirs);
            Libc.CloseQuietly(ours);
        }
    }

    /// <summary>Unmounts <paramref name="target"/> through the helper (lazily when <paramref name="lazy"/>); returns the error text or null.</summary>
    public static string? Unmount(string target, bool lazy)
    {
        var tool = Find() ?? throw new InvalidOperationException($"{Tool} is not installed (package fuse3)");
        var start = new ProcessStartInfo(tool) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add(lazy ? "-uz" : "-u");
        start.ArgumentList.Add("--");
        start.ArgumentList.Add(target);
        var (exit, error) = Run(start);
        return exit == 0 ? null : $"{Tool} -u {target} failed (exit {exit}): {error.Trim()}";
    }

    private static (int Exit, string Error) Run(ProcessStartInfo start)
    {
        using var process = Process.Start(start) ?? throw new IOException($"could not start {start.FileName}");
        var error = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEndAsync();
        if (!process.WaitForExit(Timeout))
        {
            process.Kill();
            process.WaitForExit();
            throw new TimeoutException($"{start.FileName} did not finish within {Timeout.TotalSeconds:0} s");
        }
        return (process.ExitCode, error.GetAwaiter().GetResult() + output.GetAwaiter().GetResult());
    }

    private static int ReceiveDescriptor(int socket)
    {
        byte data = 0;
        var iov = new Libc.IoVec { Base = &data, Length = 1 };
        // struct cmsghdr { size_t len; int level; int type; } followed by one int, padded to 8 bytes.
        const int HeaderSize = 16;
        const int ControlSize = HeaderSize + 8;
        var control = stackalloc byte[ControlSize];
        new Span<byte>(control, ControlSize).Clear();
        var message = new Libc.MsgHdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = ControlSize };
        nint n;
        do
        {
            n = Libc.RecvMsg(socket, &message, Libc.MsgCmsgCloExec);
        }
        while (n < 0 && Libc.Errno == Errno.EINTR);
        if (n < 0)
        {
            throw SystemCallException.FromLastError("recvmsg(_FUSE_COMMFD)");
        }
        var length = *(nuint*)control;
        var level = *(int*)(control + 8);
        var type = *(int*)(control + 12);
        if (n == 0 || message.ControlLength < HeaderSize + sizeof(int) || length < HeaderSize + sizeof(int)
            || level != Libc.SolSocket || type != Libc.ScmRights)
        {
            throw new IOException($"{Tool} did not pass a /dev/fuse descriptor back");
        }
        return *(int*)(control + HeaderSize);
    }
}
