using Blockshot.Core;
using Blockshot.Core.Extents;
using Microsoft.Win32.SafeHandles;

namespace Blockshot.Fuse.Tests;

/// <summary>A node that cannot change size (truncate must be refused).</summary>
internal sealed class FixedSizeFilter(BlockNode next) : FilterNode(next)
{
    public override string Kind => "fixed";

    protected override NodeCapabilities ComputeCapabilities() => Next.Capabilities.Without(NodeFeatures.Resize);

    public override ValueTask ResizeAsync(long newSize) =>
        ValueTask.FromException(new BlockException(BlockError.NotSupported, "fixed-size node"));
}

/// <summary>A node that demands requests aligned to <paramref name="block"/> bytes and fails any other.</summary>
internal sealed class AlignedOnlyFilter(BlockNode next, int block) : FilterNode(next)
{
    public override string Kind => "aligned";

    public int Violations;

    protected override NodeCapabilities ComputeCapabilities() => Next.Capabilities with { MinBlockSize = block };

    public override ValueTask ReadAsync(long offset, Memory<byte> buffer) =>
        IsAligned(offset, buffer.Length) ? Next.ReadAsync(offset, buffer) : Refuse(offset, buffer.Length);

    public override ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, IoFlags flags) =>
        IsAligned(offset, data.Length) ? Next.WriteAsync(offset, data, flags) : Refuse(offset, data.Length);

    public override ValueTask WriteZeroesAsync(long offset, long length, IoFlags flags) =>
        IsAligned(offset, length) ? Next.WriteZeroesAsync(offset, length, flags) : Refuse(offset, length);

    public override ValueTask TrimAsync(long offset, long length, IoFlags flags) =>
        IsAligned(offset, length) ? Next.TrimAsync(offset, length, flags) : Refuse(offset, length);

    private bool IsAligned(long offset, long length) => offset % block == 0 && (length % block == 0 || offset + length == Size);

    private ValueTask Refuse(long offset, long length)
    {
        Interlocked.Increment(ref Violations);
        return ValueTask.FromException(new BlockException(BlockError.Invalid, $"unaligned request {offset}+{length}"));
    }
}

/// <summary>A node whose every request completes asynchronously, after a short random delay.</summary>
internal sealed class SlowFilter(BlockNode next, int maxDelayMs = 2) : FilterNode(next)
{
    private int _seed;

    public override string Kind => "slow";

    public override async ValueTask ReadAsync(long offset, Memory<byte> buffer)
    {
        await Pause();
        await Next.ReadAsync(offset, buffer);
    }

    public override async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, IoFlags flags)
    {
        await Pause();
        await Next.WriteAsync(offset, data, flags);
    }

    public override async ValueTask FlushAsync()
    {
        await Pause();
        await Next.FlushAsync();
    }

    private Task Pause()
    {
        var delay = (Interlocked.Increment(ref _seed) * 7919) % (maxDelayMs + 1);
        return delay == 0 ? Task.Run(() => { }) : Task.Delay(delay);
    }
}

/// <summary>A tiny file-backed node for tests: real asynchronous I/O through RandomAccess.</summary>
internal sealed class TestFileNode : BlockNode
{
    private readonly SafeFileHandle _handle;

    public TestFileNode(string path, long size)
    {
        _handle = File.OpenHandle(path, FileMode.Create, FileAccess.ReadWrite, FileShare.None, FileOptions.Asynchronous);
        RandomAccess.SetLength(_handle, size);
        Size = size;
    }

    public override string Kind => "testfile";

    public override long Size { get; }

    protected override NodeCapabilities ComputeCapabilities() => new(NodeFeatures.Write | NodeFeatures.Flush);

    public override async ValueTask ReadAsync(long offset, Memory<byte> buffer)
    {
        var done = 0;
        while (done < buffer.Length)
        {
            var n = await RandomAccess.ReadAsync(_handle, buffer[done..], offset + done);
            if (n == 0)
            {
                buffer.Span[done..].Clear();
                return;
            }
            done += n;
        }
    }

    public override ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, IoFlags flags) =>
        RandomAccess.WriteAsync(_handle, data, offset);

    public override ValueTask FlushAsync()
    {
        RandomAccess.FlushToDisk(_handle);
        return default;
    }

    public override ValueTask GetExtentsAsync(long offset, long length, ExtentList extents)
    {
        extents.Add(length, AllocationFlags.Data);
        return default;
    }

    protected override ValueTask DisposeCoreAsync()
    {
        _handle.Dispose();
        return default;
    }
}
