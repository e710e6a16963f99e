using Blockshot.Core;
using Blockshot.Drivers;
using Blockshot.Fuse.Native;
using Blockshot.Fuse.Protocol;

namespace Blockshot.Fuse.Tests;

/// <summary>The session and the file export driven by a fake kernel over a socket pair: no mount needed.</summary>
public class SessionTests
{
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(150);

    [Fact]
    public async Task Init_agrees_on_version_flags_and_request_size()
    {
        await using var kernel = new FakeKernel(new MemoryNode(1 << 20), maxWrite: 256 << 10);
        var init = kernel.Init();
        Assert.Equal(7u, init.Major);
        Assert.Equal(FuseSession.SupportedMinor, init.Minor);
        Assert.Equal(256u << 10, init.MaxWrite);
        Assert.Equal((ushort)64, init.MaxPages);
        var expected = InitFlags.AsyncRead | InitFlags.BigWrites | InitFlags.MaxPages | InitFlags.AsyncDio | InitFlags.ParallelDirOps
            | InitFlags.AtomicOTrunc | InitFlags.DirectIoAllowMmap | InitFlags.InitExt;
        Assert.Equal(expected, init.Flags & expected);
        Assert.Equal(InitFlags.None, init.Flags & InitFlags.WritebackCache);
        Assert.True(kernel.Session.Initialized.IsCompletedSuccessfully);
    }

    [Fact]
    public async Task Init_from_an_old_kernel_uses_only_the_flags_it_offered()
    {
        await using var kernel = new FakeKernel(new MemoryNode(1 << 20));
        const InitFlags Offered = InitFlags.AsyncRead | InitFlags.BigWrites | InitFlags.AtomicOTrunc;
        var args = new byte[FuseInitIn.CompatWireSize];
        Span<byte> full = new byte[FuseInitIn.WireSize];
        new FuseInitIn(7, 26, 65536, (uint)Offered, 0).Write(full);
        full[..FuseInitIn.CompatWireSize].CopyTo(args);
        var reply = kernel.Expect(kernel.Send(FuseOpcode.Init, args));
        var init = FuseInitOut.Read(reply.Payload);
        Assert.Equal(26u, init.Minor);
        Assert.Equal(Offered, init.Flags);
    }

    [Fact]
    public async Task Init_from_a_newer_major_version_answers_with_ours()
    {
        await using var kernel = new FakeKernel(new MemoryNode(1 << 20));
        var reply = kernel.Expect(kernel.Send(FuseOpcode.Init, new FuseInitIn(8, 1, 0, 0, 0), FuseInitIn.WireSize));
        Assert.Equal(0, reply.Header.Error);
        Assert.Equal(7u, FuseInitOut.Read(reply.Payload).Major);
        Assert.False(kernel.Session.Initialized.IsCompleted);
        kernel.Init(); // the kernel tries again with version 7
        Assert.True(kernel.Session.Initialized.IsCompletedSuccessfully);
    }

    [Fact]
    public async Task Unknown_and_unsupported_opcodes_answer_enosys()
    {
        await using var kernel = new FakeKernel(new MemoryNode(1 << 20));
        kernel.Init();
        Assert.Equal(-Errno.ENOSYS, kernel.Expect(kernel.Send((FuseOpcode)9999, new byte[16])).Header.Error);
        Assert.Equal(-Errno.ENOSYS, kernel.Expect(kernel.Send(FuseOpcode.GetXattr, new byte[16])).Header.Error);
        Assert.Equal(-Errno.ENOSYS, kernel.Expect(kernel.Send(FuseOpcode.Statx, new byte[32])).Header.Error);
        Assert.Equal(-Errno.ENOENT, kernel.Expect(kernel.Send(FuseOpcode.Lookup, "x\0"u8)).Header.Error);
    }

    [Fact]
    public async Task Forget_batch_forget_and_interrupt_get_no_reply()
    {
        await using var kernel = new FakeKernel(new MemoryNode(1 << 20));
        kernel.Init();
        kernel.Send(FuseOpcode.Forget, new FuseForgetIn(1), FuseForgetIn.WireSize);
        var batch = new byte[FuseBatchForgetIn.WireSize + 2 * FuseForgetOne.WireSize];
        new FuseBatchForgetIn(2).Write(batch);
        new FuseForgetOne(5, 1).Write(batch.AsSpan(8));
        new FuseForgetOne(6, 2).Write(batch.AsSpan(24));
        kernel.Send(FuseOpcode.BatchForget, batch);
        kernel.Send(FuseOpcode.Interrupt, new FuseInterruptIn(12345), FuseInterruptIn.WireSize);
        var getattr = kernel.Send(FuseOpcode.GetAttr, new FuseGetAttrIn(0, 0), FuseGetAttrIn.WireSize);
        var reply = kernel.Expect(getattr); // the first reply is the GETATTR's
        Assert.Equal(0, reply.Header.Error);
        Assert.Null(kernel.Receive(Quiet));
        Assert.Equal(1, kernel.Session.Interrupts);
    }

    [Fact]
    public async Task Short_requests_are_refused_with_einval()
    {
        await using var kernel = new FakeKernel(new MemoryNode(1 << 20));
        kernel.Init();
        Assert.Equal(-Errno.EINVAL, kernel.Expect(kernel.Send(FuseOpcode.Read, new byte[10])).Header.Error);
        // A WRITE claiming more data than it carries.
        var write = kernel.Send(FuseOpcode.Write, new FuseWriteIn(1, 0, 4096, 0, 0, 0), FuseWriteIn.WireSize, data: new byte[100]);
        Assert.Equal(-Errno.EINVAL, kernel.Expect(write).Header.Error);
    }

    [Fact]
    public async Task One_reader_keeps_many_requests_in_flight_and_replies_in_completion_order()
    {
        var gate = new GateFilter(new MemoryNode(1 << 20));
        await using var kernel = new FakeKernel(gate, readers: 1);
        kernel.Init();
        var held = kernel.Send(FuseOpcode.Read, new FuseReadIn(1, 0, 4096, 0, 0, 0), FuseReadIn.WireSize);
        var quick = new List<ulong>();
        for (var i = 1; i <= 8; i++)
        {
            quick.Add(kernel.Send(FuseOpcode.Read, new FuseReadIn(1, (ulong)(i * 4096), 4096, 0, 0, 0), FuseReadIn.WireSize));
        }
        foreach (var unique in quick)
        {
            var reply = kernel.Expect(unique);
            Assert.Equal(4096, reply.Payload.Length);
        }
        Assert.Equal(1, kernel.Session.InFlight);
        gate.Open();
        Assert.Equal(4096, kernel.Expect(held).Payload.Length);
    }

    [Fact]
    public async Task Read_write_flush_and_fsync_reach_the_node()
    {
        var node = new MemoryNode(1 << 20);
        await using var kernel = new FakeKernel(node);
        kernel.Init();
        var data = Patterns.Make(10000, 5000, 1);
        var write = kernel.Expect(kernel.Send(FuseOpcode.Write, new FuseWriteIn(1, 5000, (uint)data.Length, 0, 0, 0), FuseWriteIn.WireSize, data: data));
        Assert.Equal((uint)data.Length, FuseWriteOut.Read(write.Payload).Size);
        var read = kernel.Expect(kernel.Send(FuseOpcode.Read, new FuseReadIn(1, 5000, 10000, 0, 0, 0), FuseReadIn.WireSize));
        Assert.Equal(data, read.Payload);

        // Past the end: reads are empty, writes are cut at the end or refused.
        Assert.Empty(kernel.Expect(kernel.Send(FuseOpcode.Read, new FuseReadIn(1, 1 << 20, 4096, 0, 0, 0), FuseReadIn.WireSize)).Payload);
        var tail = kernel.Expect(kernel.Send(FuseOpcode.Write, new FuseWriteIn(1, (1 << 20) - 100, 4096, 0, 0, 0), FuseWriteIn.WireSize, data: new byte[4096]));
        Assert.Equal(100u, FuseWriteOut.Read(tail.Payload).Size);
        var past = kernel.Expect(kernel.Send(FuseOpcode.Write, new FuseWriteIn(1, 1 << 20, 16, 0, 0, 0), FuseWriteIn.WireSize, data: new byte[16]));
        Assert.Equal(-Errno.ENOSPC, past.Header.Error);

        Assert.Equal(0, kernel.Expect(kernel.Send(FuseOpcode.Flush, new FuseFlushIn(1, 0), FuseFlushIn.WireSize)).Header.Error);
        Assert.Equal(1, kernel.Counters.Flushes);
        // Nothing written since: a close does not flush again, an fsync does.
        Assert.Equal(0, kernel.Expect(kernel.Send(FuseOpcode.Flush, new FuseFlushIn(1, 0), FuseFlushIn.WireSize)).Header.Error);
        Assert.Equal(1, kernel.Counters.Flushes);
        Assert.Equal(0, kernel.Expect(kernel.Send(FuseOpcode.Fsync, new FuseFsyncIn(1, 0), FuseFsyncIn.WireSize)).Header.Error);
        Assert.Equal(2, kernel.Counters.Flushes);
    }

    [Fact]
    public async Task Getattr_statfs_and_setattr_describe_one_regular_file()
    {
        await using var kernel = new FakeKernel(new MemoryNode(3 << 20), new FuseExportOptions { Uid = 1234, Gid = 5678 });
        kernel.Init();
        var attr = FuseAttrOut.Read(kernel.Expect(kernel.Send(FuseOpcode.GetAttr, new FuseGetAttrIn(0, 0), FuseGetAttrIn.WireSize)).Payload);
        Assert.Equal(1UL, attr.Attr.Ino);
        Assert.Equal(3UL << 20, attr.Attr.Size);
        Assert.Equal(0x81A4u, attr.Attr.Mode); // S_IFREG | 0644
        Assert.Equal(1234u, attr.Attr.Uid);
        Assert.Equal(5678u, attr.Attr.Gid);
        Assert.Equal(1UL, attr.AttrValid);

        var statfs = FuseStatFsOut.Read(kernel.Expect(kernel.Send(FuseOpcode.StatFs, [])).Payload);
        Assert.Equal(768UL, statfs.Blocks);

        var chmod = new FuseSetAttrIn(SetAttrValid.Mode | SetAttrValid.MTime, 0, 0, 0, 0, 1_700_000_000, 0, 0, 5, 0, 0x8180, 0, 0);
        var changed = FuseAttrOut.Read(kernel.Expect(kernel.Send(FuseOpcode.SetAttr, chmod, FuseSetAttrIn.WireSize)).Payload);
        Assert.Equal(0x8180u, changed.Attr.Mode); // S_IFREG | 0600
        Assert.Equal(1_700_000_000UL, changed.Attr.MTime);
        Assert.Equal(0u, changed.Attr.MTimeNsec); // 5 ns round to the 100 ns tick

        Assert.Equal(-Errno.ENOENT, kernel.Expect(kernel.Send(FuseOpcode.GetAttr, new FuseGetAttrIn(0, 0), FuseGetAttrIn.WireSize, nodeId: 7)).Header.Error);
    }

    [Fact]
    public async Task A_read_only_export_refuses_opening_for_write_and_writing()
    {
        await using var kernel = new FakeKernel(new MemoryNode(1 << 20), new FuseExportOptions { ReadOnly = true });
        kernel.Init();
        Assert.Equal(-Errno.EROFS, kernel.Expect(kernel.Send(FuseOpcode.Open, new FuseOpenIn((uint)Libc.ORdWr, 0), FuseOpenIn.WireSize)).Header.Error);
        var open = kernel.Expect(kernel.Send(FuseOpcode.Open, new FuseOpenIn((uint)Libc.ORdOnly, 0), FuseOpenIn.WireSize));
        Assert.Equal(OpenFlags.DirectIo | OpenFlags.ParallelDirectWrites, FuseOpenOut.Read(open.Payload).OpenFlags);
        var write = kernel.Send(FuseOpcode.Write, new FuseWriteIn(1, 0, 16, 0, 0, 0), FuseWriteIn.WireSize, data: new byte[16]);
        Assert.Equal(-Errno.EROFS, kernel.Expect(write).Header.Error);
        var punch = new FuseFallocateIn(1, 0, 4096, FallocateMode.PunchHole | FallocateMode.KeepSize);
        Assert.Equal(-Errno.EROFS, kernel.Expect(kernel.Send(FuseOpcode.Fallocate, punch, FuseFallocateIn.WireSize)).Header.Error);
        var grow = new FuseSetAttrIn(SetAttrValid.Size, 0, 2 << 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
        Assert.Equal(-Errno.EROFS, kernel.Expect(kernel.Send(FuseOpcode.SetAttr, grow, FuseSetAttrIn.WireSize)).Header.Error);
    }

    [Fact]
    public async Task Node_errors_become_the_errno_of_their_block_error()
    {
        var node = new FailingFilter(new MemoryNode(1 << 20));
        await using var kernel = new FakeKernel(node);
        kernel.Init();
        node.Failure = new BlockException(BlockError.Io, "injected");
        Assert.Equal(-Errno.EIO, kernel.Expect(kernel.Send(FuseOpcode.Read, new FuseReadIn(1, 0, 512, 0, 0, 0), FuseReadIn.WireSize)).Header.Error);
        node.Failure = new BlockException(BlockError.NoSpace, "injected");
        var write = kernel.Send(FuseOpcode.Write, new FuseWriteIn(1, 0, 16, 0, 0, 0), FuseWriteIn.WireSize, data: new byte[16]);
        Assert.Equal(-Errno.ENOSPC, kernel.Expect(write).Header.Error);
        node.Failure = new InvalidOperationException("a bug");
        Assert.Equal(-Errno.EIO, kernel.Expect(kernel.Send(FuseOpcode.Read, new FuseReadIn(1, 0, 512, 0, 0, 0), FuseReadIn.WireSize)).Header.Error);
        node.Failure = null;
        Assert.Equal(0, kernel.Expect(kernel.Send(FuseOpcode.Read, new FuseReadIn(1, 0, 512, 0, 0, 0), FuseReadIn.WireSize)).Header.Error);
        Assert.Equal(3, kernel.Counters.Errors);
        Assert.IsType<InvalidOperationException>(kernel.FileSystem.LastError);
    }

    [Fact]
    public async Task Lseek_answers_from_extents_and_enxio_past_the_end()
    {
        var node = new MemoryNode(1 << 20);
        await node.WriteAsync(65536, new byte[] { 1 }, IoFlags.None);
        await using var kernel = new FakeKernel(node);
        kernel.Init();
        long Seek(long offset, uint whence)
        {
            var reply = kernel.Expect(kernel.Send(FuseOpcode.Lseek, new FuseLseekIn(1, (ulong)offset, whence), FuseLseekIn.WireSize));
            return reply.Header.Error != 0 ? reply.Header.Error : (long)FuseLseekOut.Read(reply.Payload).Offset;
        }
        Assert.Equal(65536, Seek(0, FuseLseekIn.SeekData));
        Assert.Equal(0, Seek(0, FuseLseekIn.SeekHole));
        Assert.Equal(65536 + 4096, Seek(65536, FuseLseekIn.SeekHole));
        Assert.Equal(-Errno.ENXIO, Seek(65536 + 4096, FuseLseekIn.SeekData));
        Assert.Equal(-Errno.ENXIO, Seek(1 << 20, FuseLseekIn.SeekHole));
        Assert.Equal(-Errno.EINVAL, Seek(0, 1));
    }

    [Fact]
    public async Task Destroy_is_answered_and_ends_the_session()
    {
        await using var kernel = new FakeKernel(new MemoryNode(1 << 20));
        kernel.Init();
        Assert.Equal(0, kernel.Expect(kernel.Send(FuseOpcode.Destroy, [])).Header.Error);
        await kernel.Session.Completion.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(FuseSessionEnd.Destroyed, kernel.Session.End);
    }

    [Fact]
    public async Task The_kernel_going_away_ends_the_session_as_unmounted()
    {
        await using var kernel = new FakeKernel(new MemoryNode(1 << 20));
        kernel.Init();
        kernel.Close();
        await kernel.Session.Completion.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(FuseSessionEnd.Unmounted, kernel.Session.End);
    }

    [Fact]
    public async Task Requests_in_flight_when_the_session_stops_are_still_answered()
    {
        var gate = new GateFilter(new MemoryNode(1 << 20));
        await using var kernel = new FakeKernel(gate, readers: 1);
        kernel.Init();
        var held = kernel.Send(FuseOpcode.Read, new FuseReadIn(1, 0, 4096, 0, 0, 0), FuseReadIn.WireSize);
        while (kernel.Session.InFlight == 0)
        {
            await Task.Delay(5);
        }
        kernel.Session.Stop();
        Assert.False(kernel.Session.Completion.IsCompleted);
        gate.Open();
        Assert.Equal(4096, kernel.Expect(held).Payload.Length);
        await kernel.Session.Completion.WaitAsync(TimeSpan.FromSeconds(10));
    }

    /// <summary>Holds reads of offset 0 until opened; everything else passes straight through.</summary>
    private sealed class GateFilter(BlockNode next) : FilterNode(next)
    {
        private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override string Kind => "gate";

        public void Open() => _gate.TrySetResult();

        public override async ValueTask ReadAsync(long offset, Memory<byte> buffer)
        {
            if (offset == 0)
            {
                await _gate.Task;
            }
            await Next.ReadAsync(offset, buffer);
        }
    }

    /// <summary>Fails every read and write with <see cref="Failure"/> while it is set.</summary>
    private sealed class FailingFilter(BlockNode next) : FilterNode(next)
    {
        public Exception? Failure { get; set; }

        public override string Kind => "failing";

        public override ValueTask ReadAsync(long offset, Memory<byte> buffer) =>
            Failure is { } e ? ValueTask.FromException(e) : base.ReadAsync(offset, buffer);

        public override ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, IoFlags flags) =>
            Failure is { } e ? ValueTask.FromException(e) : base.WriteAsync(offset, data, flags);
    }
}
