using Blockshot.Core;

namespace Blockshot.Snapshots.Tests;

/// <summary>A filter that fails chosen operations (tests only; the product's fault filter comes with the daemon).</summary>
public sealed class FaultyNode(BlockNode next) : FilterNode(next, Ownership.Dispose)
{
    public override string Kind => "faulty";

    public volatile bool FailReads;
    public volatile bool FailWrites;
    public TimeSpan WriteDelay { get; set; }

    public override ValueTask ReadAsync(long offset, Memory<byte> buffer) =>
        FailReads ? ValueTask.FromException(new BlockException(BlockError.Io, "injected read error")) : Next.ReadAsync(offset, buffer);

    public override async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, IoFlags flags)
    {
        if (WriteDelay > TimeSpan.Zero)
        {
            await Task.Delay(WriteDelay);
        }
        if (FailWrites)
        {
            throw new BlockException(BlockError.Io, "injected write error");
        }
        await Next.WriteAsync(offset, data, flags);
    }
}
