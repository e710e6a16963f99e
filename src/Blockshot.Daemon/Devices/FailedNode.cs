using Blockshot.Core;
using Blockshot.Core.Extents;

namespace Blockshot.Daemon.Devices;

/// <summary>
/// Stands in for a leaf that could not be reopened: every request fails with EIO and the reason, so
/// exports stay up (clients see errors, not a vanished device) until a reload succeeds.
/// </summary>
internal sealed class FailedNode(long size, string reason) : BlockNode
{
    public string Reason { get; } = reason;

    public override string Kind => "failed";

    public override long Size => size;

    protected override NodeCapabilities ComputeCapabilities() => new(NodeFeatures.Write | NodeFeatures.Flush | NodeFeatures.Trim);

    public override ValueTask ReadAsync(long offset, Memory<byte> buffer) => Fail();

    public override ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, IoFlags flags) => Fail();

    public override ValueTask WriteZeroesAsync(long offset, long length, IoFlags flags) => Fail();

    public override ValueTask TrimAsync(long offset, long length, IoFlags flags) => Fail();

    public override ValueTask FlushAsync() => Fail();

    public override ValueTask GetExtentsAsync(long offset, long length, ExtentList extents) => Fail();

    public override string Describe() => $"failed({Reason})";

    private ValueTask Fail() => ValueTask.FromException(new BlockException(BlockError.Io, $"the device's image is unavailable: {Reason}"));
}
