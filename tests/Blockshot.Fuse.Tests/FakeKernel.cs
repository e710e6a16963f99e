using Blockshot.Core;
using Blockshot.Core.Buffers;
using Blockshot.Fuse.FileSystem;
using Blockshot.Fuse.Native;
using Blockshot.Fuse.Protocol;

namespace Blockshot.Fuse.Tests;

/// <summary>
/// Plays the kernel's side of /dev/fuse over a SOCK_SEQPACKET socket pair, which keeps message
/// boundaries as the device does: each write is one request, each read one reply. A session serves the
/// other end, so the protocol layer is tested without mounting anything.
/// </summary>
internal sealed class FakeKernel : IAsyncDisposable
{
    private const int SockSeqPacket = 5;
    private readonly int _kernel;
    private readonly byte[] _receive = GC.AllocateArray<byte>(4 << 20, pinned: true);
    private readonly byte[] _send = GC.AllocateArray<byte>(4 << 20, pinned: true);
    private ulong _unique = 2;
    private int _closed;

    public unsafe FakeKernel(BlockNode node, FuseExportOptions? options = null, int maxWrite = 128 << 10, int readers = 2)
    {
        var pair = stackalloc int[2];
        if (Libc.SocketPair(Libc.AfUnix, SockSeqPacket | Libc.SockCloExec, 0, pair) != 0)
        {
            throw SystemCallException.FromLastError("socketpair");
        }
        _kernel = pair[0];
        ServerFd = pair[1];
        Pool = new BufferPool();
        Counters = new FuseExportCounters();
        FileSystem = new BlockFileSystem(node, (options ?? new FuseExportOptions()) with { MaxWrite = maxWrite }, Counters, Pool);
        Session = new FuseSession(ServerFd, FileSystem, FileSystem.MaxWrite, readers, Pool);
        Session.Start();
    }

    public int ServerFd { get; }

    public BufferPool Pool { get; }

    public FuseExportCounters Counters { get; }

    public BlockFileSystem FileSystem { get; }

    public FuseSession Session { get; }

    /// <summary>Sends a request; returns its unique id.</summary>
    public unsafe ulong Send(FuseOpcode opcode, ReadOnlySpan<byte> args, ulong nodeId = BlockFileSystem.RootId, ReadOnlySpan<byte> data = default)
    {
        var unique = _unique += 2;
        var length = FuseInHeader.WireSize + args.Length + data.Length;
        new FuseInHeader((uint)length, opcode, unique, nodeId, 0, 0, 1, 0).Write(_send);
        args.CopyTo(_send.AsSpan(FuseInHeader.WireSize));
        data.CopyTo(_send.AsSpan(FuseInHeader.WireSize + args.Length));
        fixed (byte* p = _send)
        {
            if (Libc.Write(_kernel, p, length) != length)
            {
                throw SystemCallException.FromLastError("send request");
            }
        }
        return unique;
    }

    /// <summary>Sends a request with <paramref name="args"/> serialized as its argument struct of <paramref name="size"/> bytes.</summary>
    public ulong Send<T>(FuseOpcode opcode, T args, int size, ulong nodeId = BlockFileSystem.RootId, ReadOnlySpan<byte> data = default)
        where T : struct
    {
        Span<byte> buffer = stackalloc byte[size];
        buffer.Clear();
        switch (args)
        {
            case FuseInitIn x: x.Write(buffer); break;
            case FuseGetAttrIn x: x.Write(buffer); break;
            case FuseSetAttrIn x: x.Write(buffer); break;
            case FuseOpenIn x: x.Write(buffer); break;
            case FuseReadIn x: x.Write(buffer); break;
            case FuseWriteIn x: x.Write(buffer); break;
            case FuseReleaseIn x: x.Write(buffer); break;
            case FuseFlushIn x: x.Write(buffer); break;
            case FuseFsyncIn x: x.Write(buffer); break;
            case FuseFallocateIn x: x.Write(buffer); break;
            case FuseLseekIn x: x.Write(buffer); break;
            case FuseForgetIn x: x.Write(buffer); break;
            case FuseInterruptIn x: x.Write(buffer); break;
            default: throw new ArgumentException($"no writer for {typeof(T)}");
        }
        return Send(opcode, buffer, nodeId, data);
    }

    /// <summary>Receives one reply, or null when none comes within <paramref name="timeout"/>.</summary>
    public Reply? Receive(TimeSpan timeout)
    {
        var n = ReceiveInto(timeout);
        return n < 0 ? null : new Reply(FuseOutHeader.Read(_receive), _receive.AsSpan(FuseOutHeader.WireSize, n - FuseOutHeader.WireSize).ToArray());
    }

    /// <summary>Receives one reply into the preallocated buffer; returns its length, or -1 on timeout.</summary>
    public unsafe int ReceiveInto(TimeSpan timeout)
    {
        var poll = new Libc.PollFd { Fd = _kernel, Events = Libc.PollIn };
        if (Libc.Poll(&poll, 1, (int)timeout.TotalMilliseconds) <= 0)
        {
            return -1;
        }
        fixed (byte* p = _receive)
        {
            var n = (int)Libc.Read(_kernel, p, _receive.Length);
            // No Assert here: this runs in the allocation test, and assertions allocate.
            if (n < FuseOutHeader.WireSize || n != FuseOutHeader.Read(_receive).Length)
            {
                throw new InvalidDataException($"bad reply of {n} bytes (errno {Libc.Errno})");
            }
            return n;
        }
    }

    public ReadOnlySpan<byte> Received => _receive;

    /// <summary>Receives the reply to <paramref name="unique"/>, failing on timeout or on a reply to something else.</summary>
    public Reply Expect(ulong unique)
    {
        var reply = Receive(TimeSpan.FromSeconds(10)) ?? throw new Xunit.Sdk.XunitException($"no reply to request {unique}");
        Assert.Equal(unique, reply.Header.Unique);
        return reply;
    }

    /// <summary>Answers INIT the way a 7.45 kernel offering everything would.</summary>
    public FuseInitOut Init(uint minor = 45, InitFlags offered = (InitFlags)ulong.MaxValue)
    {
        var unique = Send(FuseOpcode.Init, new FuseInitIn(7, minor, 128 << 10, (uint)offered, (uint)((ulong)offered >> 32)), FuseInitIn.WireSize);
        var reply = Expect(unique);
        Assert.Equal(0, reply.Header.Error);
        return FuseInitOut.Read(reply.Payload);
    }

    /// <summary>Closes the kernel's end, as an unmount does.</summary>
    public void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) == 0)
        {
            Libc.CloseQuietly(_kernel);
        }
    }

    public async ValueTask DisposeAsync()
    {
        Close();
        Session.Stop();
        await Session.Completion.WaitAsync(TimeSpan.FromSeconds(10));
        Session.Dispose();
        Libc.CloseQuietly(ServerFd);
        Assert.Equal(0, Pool.Outstanding);
        Pool.Dispose();
    }

    internal sealed record Reply(FuseOutHeader Header, byte[] Payload);
}
