using Blockshot.Core.Extents;

namespace Blockshot.Core.Tests;

/// <summary>A small byte-array node for Core's own tests (Core may not reference the drivers).</summary>
internal sealed class ArrayNode(int size) : BlockNode
{
    private readonly byte[] _data = new byte[size];

    public override string Kind => "array";

    public override long Size => _data.Length;

    public Func<Task>? BeforeRead { get; set; }

    protected override NodeCapabilities ComputeCapabilities() =>
        new(NodeFeatures.Write | NodeFeatures.Flush | NodeFeatures.Fua | NodeFeatures.Trim | NodeFeatures.WriteZeroes, MaxBlockSize: 1 << 20);

    public override async ValueTask ReadAsync(long offset, Memory<byte> buffer)
    {
        if (BeforeRead is { } hook)
        {
            await hook();
        }
        _data.AsMemory((int)offset, buffer.Length).CopyTo(buffer);
    }

    public override ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, IoFlags flags)
    {
        lock (_data)
        {
            data.CopyTo(_data.AsMemory((int)offset));
        }
        return default;
    }

    public override ValueTask TrimAsync(long offset, long length, IoFlags flags)
    {
        _data.AsSpan((int)offset, (int)length).Clear();
        return default;
    }

    public override ValueTask GetExtentsAsync(long offset, long length, ExtentList extents)
    {
        extents.Add(length, AllocationFlags.Data);
        return default;
    }
}

/// <summary>A filter that overrides nothing: it must behave exactly like the node below.</summary>
internal sealed class PassThroughFilter(BlockNode next) : FilterNode(next, Ownership.Dispose)
{
    public override string Kind => "pass";
}

/// <summary>A filter that XORs data with a key on the way down and back: proves requests go through it.</summary>
internal sealed class XorFilter(BlockNode next, byte key) : FilterNode(next)
{
    public override string Kind => "xor";

    public override async ValueTask ReadAsync(long offset, Memory<byte> buffer)
    {
        await Next.ReadAsync(offset, buffer);
        foreach (ref var b in buffer.Span)
        {
            b ^= key;
        }
    }

    public override ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, IoFlags flags)
    {
        var copy = data.ToArray();
        foreach (ref var b in copy.AsSpan())
        {
            b ^= key;
        }
        return Next.WriteAsync(offset, copy, flags);
    }
}
