using Blockshot.Core;
using Blockshot.Core.Buffers;

namespace Blockshot.Drivers.Tests.Raw;

/// <summary>The conformance suite over raw files in a temporary directory on /tmp.</summary>
public abstract class RawFileConformanceBase : BlockNodeConformance
{
    private readonly TempDir _dir = new("blockshot-raw");
    private readonly BufferPool _pool = new();
    private int _files;

    /// <summary>Punched holes read back as zeros.</summary>
    protected override bool TrimReadsZero => true;

    protected virtual bool Direct => false;

    protected override ValueTask<BlockNode> CreateNodeAsync(long size)
    {
        var path = RawFiles.CreateSparse(_dir.File($"disk{_files++}.raw"), size);
        return new(Wrap(RawFileNode.Open(path, RawFiles.Options(_pool, Direct))));
    }

    protected virtual BlockNode Wrap(RawFileNode node) => node;

    protected override ValueTask CleanupAsync()
    {
        // Every bounce buffer went back to the pool.
        Assert.Equal(0, _pool.Outstanding);
        _pool.Dispose();
        _dir.Dispose();
        return default;
    }
}

public class RawFileBufferedConformanceTests : RawFileConformanceBase
{
}

public class RawFileDirectConformanceTests : RawFileConformanceBase
{
    protected override bool Direct => true;
}

/// <summary>O_DIRECT over a file whose size is not a multiple of the block size.</summary>
public class RawFileDirectOddSizeConformanceTests : RawFileConformanceBase
{
    protected override bool Direct => true;

    protected override long DefaultSize => (4 << 20) + 1000;
}

/// <summary>A raw file attached under a slot, as an export holds it (the suite adds its own slot on top).</summary>
public class RawFileUnderSlotConformanceTests : RawFileConformanceBase
{
    protected override BlockNode Wrap(RawFileNode node) => new OwningSlot(node);

    private sealed class OwningSlot(RawFileNode node) : FilterNode(new Slot(node, name: "raw-slot"), Ownership.Dispose)
    {
        private readonly RawFileNode _node = node;

        public override string Kind => "owning-slot";

        protected override async ValueTask DisposeCoreAsync()
        {
            await base.DisposeCoreAsync();
            await _node.DisposeAsync();
        }
    }
}
