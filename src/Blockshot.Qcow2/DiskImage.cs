using System.Buffers.Binary;
using Blockshot.Core;
using Blockshot.Drivers;
using Blockshot.Qcow2.Format;

namespace Blockshot.Qcow2;

/// <summary>
/// Opens an image file or host block device as a node in whichever format it is: qcow2 (detected by its
/// magic, with its backing chain) or raw. The one opener the CLI and the daemon share.
/// <para>
/// Failures: <see cref="ImageOpenException"/> when a file cannot be opened (missing, permission, locked
/// by another process; for a file of the backing chain the message says so), <see cref="BlockException"/>
/// when a qcow2 image is malformed, corrupt or uses an unsupported feature, and
/// <see cref="ArgumentException"/> for an unknown format or an option the format cannot honour.
/// </para>
/// </summary>
public static class DiskImage
{
    /// <summary>The formats <see cref="OpenAsync"/> accepts.</summary>
    public static IReadOnlyList<string> Formats { get; } = ["raw", "qcow2"];

    /// <summary>Guesses the format from the first bytes: "qcow2" by its magic, "raw" otherwise.</summary>
    public static string Probe(string path)
    {
        using var handle = ImageFileHandle.Open(path, readOnly: true, locking: false);
        Span<byte> head = stackalloc byte[4];
        var n = RandomAccess.Read(handle, head, 0);
        return n == 4 && BinaryPrimitives.ReadUInt32BigEndian(head) == Qcow2Constants.Magic ? "qcow2" : "raw";
    }

    /// <summary>Opens <paramref name="path"/>; returns the node and the format it was opened as.</summary>
    public static async ValueTask<(BlockNode Node, string Format)> OpenAsync(string path, DiskImageOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= new DiskImageOptions();
        var format = options.Format ?? Probe(path);
        switch (format)
        {
            case "raw":
                return (RawFileNode.Open(path, new RawFileOptions { ReadOnly = options.ReadOnly, Direct = options.Direct, Locking = options.Locking }), "raw");
            case "qcow2":
                if (options.Direct)
                {
                    throw new ArgumentException("direct I/O (O_DIRECT) is not supported for qcow2 images; serve them through the page cache");
                }
                try
                {
                    var node = await Qcow2Node.OpenAsync(path, new Qcow2OpenOptions
                    {
                        ReadOnly = options.ReadOnly,
                        Locking = options.Locking,
                        OpenBacking = options.OpenBacking,
                    }).ConfigureAwait(false);
                    return (node, "qcow2");
                }
                catch (ImageOpenException e) when (e.Path != path)
                {
                    throw new ImageOpenException(e.Reason, e.Path, $"{path} needs {e.Path} (backing or data file): {e.Message}", e.Errno, e);
                }
            default:
                throw new ArgumentException($"unknown format '{format}' (expected one of: {string.Join(", ", Formats)})");
        }
    }
}
