using Blockshot.Core;

namespace Blockshot.Qcow2.Internal;

/// <summary>A read-only raw file used as a backing image when no other driver is supplied.</summary>
internal sealed class RawBackingNode : BlockNode
{
    private readonly ImageFile _file;
    private readonly long _size;

    public RawBackingNode(string path)
    {
        _file = ImageFile.Open(path, writable: false);
        _size = _file.Length;
        Path = path;
    }

    public string Path { get; }

    public override string Kind => "raw";

    public override long Size => _size;

    protected override NodeCapabilities ComputeCapabilities() => new(NodeFeatures.MultiConn);

    public override ValueTask ReadAsync(long offset, Memory<byte> buffer) => _file.ReadAsync(offset, buffer);

    public override string Describe() => $"raw({Path})";

    protected override ValueTask DisposeCoreAsync()
    {
        _file.Dispose();
        return default;
    }
}
