using Blockshot.Core.Buffers;

namespace Blockshot.Fuse;

/// <summary>How a FUSE export is mounted and what it shows.</summary>
public sealed record FuseExportOptions
{
    /// <summary>Refuse writes, trims and resizes; the file shows mode 0444. Default false (mode 0644).</summary>
    public bool ReadOnly { get; init; }

    /// <summary>Attach a loop device to the mounted file (needs root). Default false.</summary>
    public bool Loop { get; init; }

    /// <summary>
    /// Ask the loop device for direct I/O, so its requests skip the page cache on their way to the
    /// export. The kernel may refuse; the loop then runs buffered and <see cref="FuseExport.LoopDirectIo"/>
    /// says so. Default true.
    /// </summary>
    public bool DirectIo { get; init; } = true;

    /// <summary>Logical block size of the loop device: 512 (default) or 4096.</summary>
    public int LoopBlockSize { get; init; } = 512;

    /// <summary>Let users other than the mounting one open the file (permissions still apply). Default false.</summary>
    public bool AllowOther { get; init; }

    /// <summary>The owner the file shows; default the effective user of this process.</summary>
    public uint? Uid { get; init; }

    /// <summary>The group the file shows; default the effective group of this process.</summary>
    public uint? Gid { get; init; }

    /// <summary>Largest READ or WRITE the kernel sends, in bytes (a multiple of 4096). Default 1 MiB.</summary>
    public int MaxWrite { get; init; } = 1 << 20;

    /// <summary>Threads reading requests from the device. Default twice the processors, between 2 and 16.</summary>
    public int Readers { get; init; } = Math.Clamp(Environment.ProcessorCount * 2, 2, 16);

    /// <summary>How long the kernel may cache the file's attributes (its size among them). Default one second.</summary>
    public TimeSpan AttributeTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How to mount. Default: mount(2) when running as root, fusermount3 otherwise.</summary>
    public FuseMountMethod MountMethod { get; init; } = FuseMountMethod.Auto;

    /// <summary>Create the mountpoint as an empty regular file if it does not exist (and remove it on dispose). Default true.</summary>
    public bool CreateMountpoint { get; init; } = true;

    /// <summary>The source name shown in the mount table. Default <c>blockshot</c>.</summary>
    public string FsName { get; init; } = "blockshot";

    /// <summary>Where request buffers come from; default <see cref="BufferPool.Shared"/>.</summary>
    public BufferPool? BufferPool { get; init; }

    /// <summary>How long <see cref="FuseExport.StartAsync"/> waits for the kernel's INIT. Default ten seconds.</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(10);
}
