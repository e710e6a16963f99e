using Blockshot.Core;
using Blockshot.Core.Extents;
using Xunit;

namespace Blockshot.Testing;

/// <summary>
/// The conformance suite every writable node and filter stack passes: reads and writes against a
/// reference model, boundaries, unaligned requests, zeroing, trims, flushes, extents and concurrency.
/// Derive from it and say how to make a fresh, zero-filled node.
/// </summary>
public abstract class BlockNodeConformance : IAsyncLifetime
{
    private readonly List<BlockNode> _nodes = [];

    /// <summary>Size of the device most tests use.</summary>
    protected virtual long DefaultSize => 4 << 20;

    /// <summary>True when a trimmed range is guaranteed to read back as zeros.</summary>
    protected virtual bool TrimReadsZero => false;

    /// <summary>Makes a fresh zero-filled node of <paramref name="size"/> bytes.</summary>
    protected abstract ValueTask<BlockNode> CreateNodeAsync(long size);

    /// <summary>Called after the test, once every node is disposed.</summary>
    protected virtual ValueTask CleanupAsync() => default;

    /// <inheritdoc/>
    public Task InitializeAsync() => Task.CompletedTask;

    /// <inheritdoc/>
    public async Task DisposeAsync()
    {
        foreach (var node in _nodes)
        {
            await node.DisposeAsync();
        }
        await CleanupAsync();
    }

    /// <summary>Creates a node through the validating entry, remembering it for disposal.</summary>
    protected async Task<Slot> NewAsync(long? size = null)
    {
        var node = await CreateNodeAsync(size ?? DefaultSize);
        _nodes.Add(node);
        var slot = new Slot(node, name: "conformance");
        _nodes.Insert(0, slot);
        return slot;
    }

    [Fact]
    public async Task Size_is_what_was_asked()
    {
        var node = await NewAsync(3 << 20);
        Assert.Equal(3 << 20, node.Size);
    }

    [Fact]
    public async Task New_node_reads_as_zeros()
    {
        var node = await NewAsync();
        var buffer = new byte[node.Size];
        buffer.AsSpan().Fill(0xAA);
        await ReadAllAsync(node, 0, buffer);
        Assert.Equal(-1, Array.FindIndex(buffer, b => b != 0));
    }

    [Theory]
    [InlineData(0, 4096)]
    [InlineData(1, 1)]
    [InlineData(511, 2)]
    [InlineData(4095, 4098)]
    [InlineData(65535, 131074)]
    [InlineData(12345, 54321)]
    [InlineData(1 << 20, 1 << 20)]
    public async Task Write_then_read_returns_the_data(long offset, int length)
    {
        var node = await NewAsync();
        var data = Patterns.Make(length, offset, 1);
        await node.WriteAsync(offset, data, IoFlags.None);
        var back = new byte[length];
        await node.ReadAsync(offset, back);
        Assert.Equal(-1, Patterns.FirstDifference(data, back));

        // The neighbours are untouched.
        var around = new byte[Math.Min(8192, (int)offset)];
        await node.ReadAsync(offset - around.Length, around);
        Assert.True(around.All(b => b == 0), "bytes before the write changed");
    }

    [Fact]
    public async Task First_and_last_bytes_are_addressable()
    {
        var node = await NewAsync();
        var last = node.Size - 1;
        await node.WriteAsync(0, new byte[] { 0x11 }, IoFlags.None);
        await node.WriteAsync(last, new byte[] { 0x22 }, IoFlags.None);
        var b = new byte[1];
        await node.ReadAsync(0, b);
        Assert.Equal(0x11, b[0]);
        await node.ReadAsync(last, b);
        Assert.Equal(0x22, b[0]);
    }

    [Fact]
    public async Task Requests_past_the_end_fail_with_the_right_error()
    {
        var node = await NewAsync();
        var size = node.Size;
        var read = await Assert.ThrowsAsync<BlockException>(() => node.ReadAsync(size - 1, new byte[2]).AsTask());
        Assert.Equal(BlockError.Invalid, read.Error);
        var write = await Assert.ThrowsAsync<BlockException>(() => node.WriteAsync(size, new byte[1], IoFlags.None).AsTask());
        Assert.Equal(BlockError.NoSpace, write.Error);
        var zero = await Assert.ThrowsAsync<BlockException>(() => node.WriteZeroesAsync(size - 512, 1024, IoFlags.None).AsTask());
        Assert.Equal(BlockError.NoSpace, zero.Error);
        var trim = await Assert.ThrowsAsync<BlockException>(() => node.TrimAsync(size, 1, IoFlags.None).AsTask());
        Assert.Equal(BlockError.Invalid, trim.Error);
        var negative = await Assert.ThrowsAsync<BlockException>(() => node.ReadAsync(-1, new byte[1]).AsTask());
        Assert.Equal(BlockError.Invalid, negative.Error);
    }

    [Fact]
    public async Task Write_zeroes_reads_back_zero_with_and_without_may_trim()
    {
        var node = await NewAsync();
        var data = Patterns.Make((int)node.Size, 0, 2);
        await WriteAllAsync(node, 0, data);
        await node.WriteZeroesAsync(1000, 70000, IoFlags.None);
        await node.WriteZeroesAsync(200000, 1 << 20, IoFlags.MayTrim);
        var model = new ReferenceModel((int)node.Size);
        model.Write(0, data);
        model.Zero(1000, 70000);
        model.Zero(200000, 1 << 20);
        await VerifyAllAsync(node, model, "after write-zeroes");
    }

    [Fact]
    public async Task Fast_zero_either_zeroes_or_refuses_without_changing_data()
    {
        var node = await NewAsync();
        var data = Patterns.Make(1 << 20, 0, 3);
        await node.WriteAsync(0, data, IoFlags.None);
        var model = new ReferenceModel((int)node.Size);
        model.Write(0, data);
        try
        {
            await node.WriteZeroesAsync(4096, 65536, IoFlags.FastZero | IoFlags.MayTrim);
            model.Zero(4096, 65536);
        }
        catch (BlockException e) when (e.Error == BlockError.NotSupported)
        {
            // Refusing is allowed; the data must be untouched.
        }
        await VerifyAllAsync(node, model, "after fast zero");
    }

    [Fact]
    public async Task Trim_then_write_keeps_the_new_data()
    {
        var node = await NewAsync();
        var model = new ReferenceModel((int)node.Size);
        var data = Patterns.Make((int)node.Size, 0, 4);
        await WriteAllAsync(node, 0, data);
        model.Write(0, data);
        await node.TrimAsync(65536, 1 << 20, IoFlags.None);
        model.Trim(65536, 1 << 20, TrimReadsZero);
        var fresh = Patterns.Make(5000, 70000, 5);
        await node.WriteAsync(70000, fresh, IoFlags.None);
        model.Write(70000, fresh);
        await VerifyAllAsync(node, model, "after trim and rewrite");
    }

    [Fact]
    public async Task Flush_and_fua_writes_succeed_and_persist_in_view()
    {
        var node = await NewAsync();
        var data = Patterns.Make(8192, 4096, 6);
        await node.WriteAsync(4096, data, IoFlags.Fua);
        await node.FlushAsync();
        var back = new byte[8192];
        await node.ReadAsync(4096, back);
        Assert.Equal(data, back);
    }

    [Fact]
    public async Task Extents_cover_the_range_and_zero_runs_read_as_zero()
    {
        var node = await NewAsync();
        var model = new ReferenceModel((int)node.Size);
        var rng = new Random(7);
        for (var i = 0; i < 20; i++)
        {
            var offset = rng.NextInt64(0, node.Size - 70000);
            var data = Patterns.Make(rng.Next(1, 70000), offset, i);
            await node.WriteAsync(offset, data, IoFlags.None);
            model.Write(offset, data);
        }
        await node.WriteZeroesAsync(0, 65536, IoFlags.MayTrim);
        model.Zero(0, 65536);

        var extents = new ExtentList();
        long pos = 0;
        var buffer = new byte[node.Size];
        await ReadAllAsync(node, 0, buffer);
        while (pos < node.Size)
        {
            extents.Reset(pos, node.Size - pos);
            await node.GetExtentsAsync(pos, node.Size - pos, extents);
            Assert.True(extents.Count > 0, $"no extent returned at {pos}");
            Assert.Equal(pos, extents[0].Offset);
            foreach (var e in extents.Items)
            {
                Assert.True(e.Length > 0);
                if ((e.Flags & AllocationFlags.Zero) != 0)
                {
                    var run = buffer.AsSpan((int)e.Offset, (int)e.Length);
                    Assert.True(run.IndexOfAnyExcept((byte)0) < 0, $"extent {e} claims zeros but holds data");
                }
            }
            pos = extents.End;
        }
        Assert.Equal(node.Size, pos);
    }

    [Fact]
    public async Task Random_requests_match_the_reference_model()
    {
        var node = await NewAsync();
        var size = (int)node.Size;
        var model = new ReferenceModel(size);
        var rng = new Random(12345);
        var buffer = new byte[256 << 10];
        for (var op = 0; op < 1500; op++)
        {
            var length = PickLength(rng, Math.Min(size, buffer.Length));
            var offset = PickOffset(rng, size, length);
            switch (rng.Next(10))
            {
                case < 4:
                    Patterns.Fill(buffer.AsSpan(0, length), offset, op);
                    await node.WriteAsync(offset, buffer.AsMemory(0, length), rng.Next(8) == 0 ? IoFlags.Fua : IoFlags.None);
                    model.Write(offset, buffer.AsSpan(0, length));
                    break;
                case < 7:
                    await node.ReadAsync(offset, buffer.AsMemory(0, length));
                    model.Verify(offset, buffer.AsSpan(0, length), $"op {op}: read {offset}+{length}");
                    break;
                case 7:
                    await node.WriteZeroesAsync(offset, length, rng.Next(2) == 0 ? IoFlags.MayTrim : IoFlags.None);
                    model.Zero(offset, length);
                    break;
                case 8:
                    await node.TrimAsync(offset, length, IoFlags.None);
                    model.Trim(offset, length, TrimReadsZero);
                    break;
                default:
                    await node.FlushAsync();
                    break;
            }
        }
        await VerifyAllAsync(node, model, "after 1500 random requests");
    }

    [Fact]
    public async Task Concurrent_writers_and_readers_on_disjoint_ranges()
    {
        var node = await NewAsync();
        const int Workers = 8;
        var stripe = node.Size / Workers;
        var tasks = Enumerable.Range(0, Workers).Select(w => Task.Run(async () =>
        {
            var rng = new Random(w);
            var baseOffset = w * stripe;
            var mine = new byte[stripe];
            var buffer = new byte[65536];
            for (var i = 0; i < 200; i++)
            {
                var length = rng.Next(1, buffer.Length);
                var offset = rng.NextInt64(0, stripe - length);
                if (rng.Next(3) == 0)
                {
                    await node.ReadAsync(baseOffset + offset, buffer.AsMemory(0, length));
                    Assert.Equal(-1, Patterns.FirstDifference(mine.AsSpan((int)offset, length), buffer.AsSpan(0, length)));
                }
                else
                {
                    Patterns.Fill(buffer.AsSpan(0, length), baseOffset + offset, w * 1000 + i);
                    await node.WriteAsync(baseOffset + offset, buffer.AsMemory(0, length), IoFlags.None);
                    buffer.AsSpan(0, length).CopyTo(mine.AsSpan((int)offset));
                }
            }
            var all = new byte[stripe];
            await node.ReadAsync(baseOffset, all);
            Assert.Equal(-1, Patterns.FirstDifference(mine, all));
        })).ToArray();
        await Task.WhenAll(tasks);
    }

    [Fact]
    public async Task Many_requests_in_flight_at_once_all_complete()
    {
        var node = await NewAsync();
        var pending = new List<Task>();
        for (var i = 0; i < 256; i++)
        {
            var offset = (long)i * 4096 % (node.Size - 4096);
            var data = Patterns.Make(4096, offset, i);
            pending.Add(node.WriteAsync(offset, data, IoFlags.None).AsTask());
        }
        await Task.WhenAll(pending);
        var reads = Enumerable.Range(0, 256).Select(async i =>
        {
            var offset = (long)i * 4096 % (node.Size - 4096);
            var back = new byte[4096];
            await node.ReadAsync(offset, back);
            Assert.Equal(-1, Patterns.FirstDifference(Patterns.Make(4096, offset, i), back));
        });
        await Task.WhenAll(reads);
    }

    /// <summary>Reads a range in pieces no larger than the node's maximum.</summary>
    protected static async Task ReadAllAsync(BlockNode node, long offset, Memory<byte> buffer)
    {
        var max = node.Capabilities.MaxBlockSize;
        while (!buffer.IsEmpty)
        {
            var n = Math.Min(buffer.Length, max);
            await node.ReadAsync(offset, buffer[..n]);
            offset += n;
            buffer = buffer[n..];
        }
    }

    /// <summary>Writes a range in pieces no larger than the node's maximum.</summary>
    protected static async Task WriteAllAsync(BlockNode node, long offset, ReadOnlyMemory<byte> data)
    {
        var max = node.Capabilities.MaxBlockSize;
        while (!data.IsEmpty)
        {
            var n = Math.Min(data.Length, max);
            await node.WriteAsync(offset, data[..n], IoFlags.None);
            offset += n;
            data = data[n..];
        }
    }

    /// <summary>Reads the whole node and checks it against the model.</summary>
    protected static async Task VerifyAllAsync(BlockNode node, ReferenceModel model, string context)
    {
        var all = new byte[model.Size];
        await ReadAllAsync(node, 0, all);
        model.Verify(0, all, context);
    }

    private static int PickLength(Random rng, int max) => rng.Next(6) switch
    {
        0 => rng.Next(1, 512),
        1 => 512 * rng.Next(1, 9),
        2 => 4096 * rng.Next(1, 17),
        3 => 65536,
        _ => rng.Next(1, max),
    };

    private static long PickOffset(Random rng, int size, int length) => rng.Next(4) switch
    {
        0 => 0,
        1 => size - length,
        2 => Align.Down(rng.NextInt64(0, size - length + 1), 4096),
        _ => rng.NextInt64(0, size - length + 1),
    };
}
