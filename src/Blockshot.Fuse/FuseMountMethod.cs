namespace Blockshot.Fuse;

/// <summary>How a FUSE filesystem gets mounted.</summary>
public enum FuseMountMethod
{
    /// <summary>mount(2) when running as root, fusermount3 otherwise.</summary>
    Auto,

    /// <summary>Open /dev/fuse and call mount(2) directly (needs CAP_SYS_ADMIN).</summary>
    Syscall,

    /// <summary>Run the setuid helper fusermount3, which mounts and passes the /dev/fuse descriptor back over a socket.</summary>
    Fusermount,
}
