using Blockshot.Core.Buffers;

namespace Blockshot.Core.Tests;

public class BufferPoolTests
{
    [Fact]
    public void Rented_buffers_are_page_aligned_counted_and_reused()
    {
        using var pool = new BufferPool();
        var a = pool.Rent(5000);
        Assert.Equal(5000, a.Length);
        Assert.Equal(8192, a.Capacity);
        Assert.Equal(1, pool.Outstanding);
        unsafe
        {
            using var pin = a.Memory.Pin();
            Assert.Equal(0, (long)pin.Pointer % BufferPool.PageSize);
        }
        a.Span.Fill(7);
        ((IDisposable)a).Dispose();
        Assert.Equal(0, pool.Outstanding);
        var b = pool.Rent(8000);
        Assert.Same(a, b);
        ((IDisposable)b).Dispose();
    }

    [Fact]
    public void Returning_twice_or_using_after_return_throws()
    {
        using var pool = new BufferPool();
        var a = pool.Rent(100);
        IDisposable d = a;
        d.Dispose();
        Assert.Throws<InvalidOperationException>(d.Dispose);
        Assert.Throws<ObjectDisposedException>(() => a.Span.Length);
    }

    [Fact]
    public void Idle_buffers_beyond_the_budget_are_freed()
    {
        using var pool = new BufferPool(retainBytes: 64 << 10);
        var buffers = Enumerable.Range(0, 4).Select(_ => pool.Rent(64 << 10)).ToList();
        Assert.Equal(4L * (64 << 10), pool.AllocatedBytes);
        foreach (IDisposable b in buffers)
        {
            b.Dispose();
        }
        Assert.Equal(64 << 10, pool.AllocatedBytes);
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public void Idle_size_classes_are_trimmed_and_busy_ones_kept()
    {
        using var pool = new BufferPool();
        ((IDisposable)pool.Rent(1 << 20)).Dispose();
        ((IDisposable)pool.Rent(4096)).Dispose();
        Assert.Equal((1 << 20) + 4096, pool.AllocatedBytes);
        var now = Environment.TickCount64;
        Assert.Equal(0, pool.TrimIdle(now));
        Assert.Equal((1 << 20) + 4096, pool.AllocatedBytes);

        var later = now + (long)BufferPool.IdleTrimAfter.TotalMilliseconds + 1000;
        Assert.Equal((1 << 20) + 4096, pool.TrimIdle(later));
        Assert.Equal(0, pool.AllocatedBytes);

        // A rented buffer is never trimmed; it goes back to the (now empty) class when returned.
        using var held = pool.Rent(8192);
        Assert.Equal(0, pool.TrimIdle(later + 60_000));
        Assert.Equal(8192, pool.AllocatedBytes);
    }

    [Fact]
    public void Oversized_rents_are_served_and_freed()
    {
        using var pool = new BufferPool();
        var big = pool.Rent(BufferPool.MaxPooledSize + 1);
        Assert.True(big.Capacity >= BufferPool.MaxPooledSize + 1);
        ((IDisposable)big).Dispose();
        Assert.Equal(0, pool.AllocatedBytes);
    }

    [Fact]
    public void Freed_large_buffers_give_their_memory_back_to_the_system()
    {
        // 64 MiB of 64 KiB buffers, touched, then freed by a pool that keeps none: the process shrinks.
        using var pool = new BufferPool(retainBytes: 0);
        var buffers = new List<PooledBuffer>();
        for (var i = 0; i < 1024; i++)
        {
            var b = pool.Rent(PooledBuffer.MappedFrom);
            b.Span.Fill(0x5a);
            buffers.Add(b);
        }
        var touched = ResidentBytes();
        foreach (var b in buffers)
        {
            ((IDisposable)b).Dispose();
        }
        Assert.Equal(0, pool.AllocatedBytes);
        var freed = touched - ResidentBytes();
        Assert.True(freed >= 48L << 20, $"only {freed >> 20} MiB of 64 MiB went back to the system");
    }

    private static long ResidentBytes()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line.AsSpan(6).Trim().ToString().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) << 10;
            }
        }
        throw new InvalidOperationException("no VmRSS in /proc/self/status");
    }
}
