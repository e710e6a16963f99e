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
    public void Oversized_rents_are_served_and_freed()
    {
        using var pool = new BufferPool();
        var big = pool.Rent(BufferPool.MaxPooledSize + 1);
        Assert.True(big.Capacity >= BufferPool.MaxPooledSize + 1);
        ((IDisposable)big).Dispose();
        Assert.Equal(0, pool.AllocatedBytes);
    }
}
