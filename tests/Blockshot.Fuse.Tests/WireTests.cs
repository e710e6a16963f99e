using Blockshot.Fuse.Loop;
using Blockshot.Fuse.Mounting;
using Blockshot.Fuse.Protocol;

namespace Blockshot.Fuse.Tests;

/// <summary>Wire structures round-trip and sit where the kernel's C structs put their fields; the opcode table is consistent.</summary>
public class WireTests
{
    [Fact]
    public void Every_struct_round_trips()
    {
        var attr = new FuseAttr(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
        RoundTrip(new FuseInHeader(1, FuseOpcode.Write, 3, 4, 5, 6, 7, 8), FuseInHeader.WireSize, FuseInHeader.Read, (v, s) => v.Write(s));
        RoundTrip(new FuseOutHeader(1, -2, 3), FuseOutHeader.WireSize, FuseOutHeader.Read, (v, s) => v.Write(s));
        RoundTrip(new FuseInitIn(7, 45, 3, 4, 5), FuseInitIn.WireSize, FuseInitIn.Read, (v, s) => v.Write(s));
        RoundTrip(new FuseInitOut(7, 40, 3, (InitFlags)0x1_0000_0004, 5, 6, 7, 8, 9, 10, 11), FuseInitOut.WireSize, FuseInitOut.Read, (v, s) => v.Write(s));
        RoundTrip(attr, FuseAttr.WireSize, FuseAttr.Read, (v, s) => v.Write(s));
        RoundTrip(new FuseAttrOut(1, 2, attr), FuseAttrOut.WireSize, FuseAttrOut.Read, (v, s) => v.Write(s));
        RoundTrip(new FuseEntryOut(1, 2, 3, 4, 5, 6, attr), FuseEntryOut.WireSize, FuseEntryOut.Read, (v, s) => v.Write(s));
        RoundTrip(new FuseGetAttrIn(1, 2), FuseGetAttrIn.WireSize, FuseGetAttrIn.Read, (v, s) => v.Write(s));
        RoundTrip(new FuseSetAttrIn((SetAttrValid)1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13), FuseSetAttrIn.WireSize, FuseSetAttrIn.Read, (v, s) => v.Write(s));
        RoundTrip(new FuseOpenIn(1, 2), FuseOpenIn.WireSize, FuseOpenIn.Read, (v, s) => v.Write(s));
        RoundTrip(new FuseOpenOut(1, (OpenFlags)2), FuseOpenOut.WireSize, FuseOpenOut.Read, (v, s) => v.Write(s));
        RoundTrip(new FuseReleaseIn(1, 2, 3, 4), FuseReleaseIn.WireSize, FuseReleaseIn.Read, (v, s) => v.Write(s));
        RoundTrip(new FuseFlushIn(1, 2), FuseFlushIn.WireSize, FuseFlushIn.Read, (v, s) => v.Write(s));
        RoundTrip(new FuseFsyncIn(1, 2), FuseFsyncIn.WireSize, FuseFsyncIn.Read, (v, s) => v.Write(s));
        RoundTrip(new FuseReadIn(1, 2, 3, 4, 5, 6), FuseReadIn.WireSize, FuseReadIn.Read, (v, s) => v.Write(s));
        RoundTrip(new FuseWriteIn(1, 2, 3, 4, 5, 6), FuseWriteIn.WireSize, FuseWriteIn.Read, (v, s) => v.Write(s));
        RoundTrip(new FuseWriteOut(1), FuseWriteOut.WireSize, FuseWriteOut.Read, (v, s) => v.Write(s));
        RoundTrip(new FuseStatFsOut(1, 2, 3, 4, 5, 6, 7, 8), FuseStatFsOut.WireSize, FuseStatFsOut.Read, (v, s) => v.Write(s));
        RoundTrip(new FuseFallocateIn(1, 2, 3, (FallocateMode)4), FuseFallocateIn.WireSize, FuseFallocateIn.Read, (v, s) => v.Write(s));
        RoundTrip(new FuseLseekIn(1, 2, 3), FuseLseekIn.WireSize, FuseLseekIn.Read, (v, s) => v.Write(s));
        RoundTrip(new FuseLseekOut(1), FuseLseekOut.WireSize, FuseLseekOut.Read, (v, s) => v.Write(s));
        RoundTrip(new FuseForgetIn(1), FuseForgetIn.WireSize, FuseForgetIn.Read, (v, s) => v.Write(s));
        RoundTrip(new FuseBatchForgetIn(1), FuseBatchForgetIn.WireSize, FuseBatchForgetIn.Read, (v, s) => v.Write(s));
        RoundTrip(new FuseForgetOne(1, 2), FuseForgetOne.WireSize, FuseForgetOne.Read, (v, s) => v.Write(s));
        RoundTrip(new FuseInterruptIn(1), FuseInterruptIn.WireSize, FuseInterruptIn.Read, (v, s) => v.Write(s));
        RoundTrip(new FuseNotifyInvalInodeOut(1, -1, 3), FuseNotifyInvalInodeOut.WireSize, FuseNotifyInvalInodeOut.Read, (v, s) => v.Write(s));
        var info = new LoopInfo64(1, 2, 3, 4, 5, 6, "disk.img");
        RoundTrip(info, LoopInfo64.WireSize, LoopInfo64.Read, (v, s) => v.Write(s));
        RoundTrip(new LoopConfig(3, 4096, info), LoopConfig.WireSize, LoopConfig.Read, (v, s) => v.Write(s));
    }

    [Fact]
    public void Fields_sit_at_the_kernel_offsets()
    {
        var buffer = new byte[128];
        new FuseInHeader(0x11, FuseOpcode.Read, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88).Write(buffer);
        Assert.Equal(0x11, buffer[0]);
        Assert.Equal((byte)FuseOpcode.Read, buffer[4]);
        Assert.Equal(0x33, buffer[8]);
        Assert.Equal(0x44, buffer[16]);
        Assert.Equal(0x77, buffer[32]);
        Assert.Equal(0x88, buffer[36]);

        Array.Clear(buffer);
        new FuseInitOut(7, 40, 0, (InitFlags)(1UL << 36 | 1UL << 22), 12, 9, 1 << 20, 1, 256, 0, 0).Write(buffer);
        Assert.Equal(1 << 6, buffer[14]); // flags bit 22
        Assert.Equal(12, buffer[16]); // max_background
        Assert.Equal(0x10, buffer[22]); // max_write = 0x100000
        Assert.Equal(1, buffer[29]); // max_pages = 256
        Assert.Equal(0x10, buffer[32]); // flags2 bit 4 = bit 36

        Array.Clear(buffer);
        new FuseSetAttrIn(SetAttrValid.Size, 0, 0x99, 0, 0, 0, 0, 0, 0, 0, 0x1A4, 0x42, 0x43).Write(buffer);
        Assert.Equal(8, buffer[0]);
        Assert.Equal(0x99, buffer[16]);
        Assert.Equal(0xA4, buffer[68]);
        Assert.Equal(0x42, buffer[76]);
        Assert.Equal(0x43, buffer[80]);

        Array.Clear(buffer);
        new FuseAttr(0, 0x22, 0, 0, 0, 0, 0, 0, 0, 0x81A4, 1, 0, 0, 0, 4096, 0).Write(buffer);
        Assert.Equal(0x22, buffer[8]);
        Assert.Equal(0xA4, buffer[60]);
        Assert.Equal(0x10, buffer[81]);
    }

    [Fact]
    public void Init_flags_above_bit_31_count_only_with_init_ext()
    {
        Assert.Equal(InitFlags.None, new FuseInitIn(7, 45, 0, 0, 0x10).AllFlags & InitFlags.DirectIoAllowMmap);
        Assert.Equal(InitFlags.DirectIoAllowMmap, new FuseInitIn(7, 45, 0, (uint)InitFlags.InitExt, 0x10).AllFlags & InitFlags.DirectIoAllowMmap);
        Assert.Equal(0u, FuseInitIn.Read(new byte[FuseInitIn.CompatWireSize]).Flags2);
    }

    [Fact]
    public void The_opcode_table_is_consistent()
    {
        var rows = OpcodeTable.All.ToList();
        Assert.Equal(rows.Count, rows.Select(r => r.Opcode).Distinct().Count());
        foreach (var row in rows)
        {
            Assert.Same(row, OpcodeTable.Find(row.Opcode));
            Assert.Equal(row.Name, row.Name.ToUpperInvariant());
        }
        Assert.Null(OpcodeTable.Find((FuseOpcode)4096)); // CUSE_INIT
        Assert.All(new[] { FuseOpcode.Forget, FuseOpcode.BatchForget, FuseOpcode.Interrupt, FuseOpcode.NotifyReply }, op => Assert.True(OpcodeTable.Find(op)!.NoReply));
        Assert.All(rows.Where(r => r.Opcode is not (FuseOpcode.Forget or FuseOpcode.BatchForget or FuseOpcode.Interrupt or FuseOpcode.NotifyReply)), r => Assert.False(r.NoReply));
        // Every opcode the file export serves has a handler, with the argument size of its struct.
        Assert.Equal(FuseReadIn.WireSize, OpcodeTable.Find(FuseOpcode.Read)!.InSize);
        Assert.Equal(FuseWriteIn.WireSize, OpcodeTable.Find(FuseOpcode.Write)!.InSize);
        Assert.Equal(FuseSetAttrIn.WireSize, OpcodeTable.Find(FuseOpcode.SetAttr)!.InSize);
        Assert.Equal(FuseFallocateIn.WireSize, OpcodeTable.Find(FuseOpcode.Fallocate)!.InSize);
        Assert.Equal(FuseLseekIn.WireSize, OpcodeTable.Find(FuseOpcode.Lseek)!.InSize);
        foreach (var op in new[]
        {
            FuseOpcode.Init, FuseOpcode.Destroy, FuseOpcode.Lookup, FuseOpcode.GetAttr, FuseOpcode.SetAttr, FuseOpcode.Open, FuseOpcode.Read,
            FuseOpcode.Write, FuseOpcode.StatFs, FuseOpcode.Release, FuseOpcode.Fsync, FuseOpcode.Flush, FuseOpcode.Fallocate,
            FuseOpcode.Lseek, FuseOpcode.Forget, FuseOpcode.BatchForget, FuseOpcode.Interrupt,
        })
        {
            Assert.NotNull(OpcodeTable.Find(op)!.Handler);
        }
    }

    [Fact]
    public void Mountinfo_lines_parse_with_optional_fields_and_escapes()
    {
        const string Text =
            "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n" +
            "140 29 0:52 / /tmp/a\\040b/disk.img rw,nosuid,nodev,relatime shared:77 - fuse.blockshot blockshot rw,user_id=0,group_id=0\n" +
            "garbage line\n" +
            "141 29 0:53 / /tmp/x rw - fuse.other src rw\n";
        var entries = MountTable.Parse(Text);
        Assert.Equal(3, entries.Count);
        Assert.Equal(new MountEntry(140, 29, 0, 52, "/tmp/a b/disk.img", "fuse.blockshot", "blockshot"), entries[1]);
        Assert.Equal("/mnt2", entries[0].MountPoint);
        Assert.Equal("a\\b\tc", MountTable.Unescape("a\\134b\\011c"));
        Assert.Equal("trailing\\04", MountTable.Unescape("trailing\\04"));
    }

    private static void RoundTrip<T>(T value, int size, Func<ReadOnlySpan<byte>, T> read, Action<T, Span<byte>> write)
    {
        var buffer = new byte[size + 8];
        buffer.AsSpan().Fill(0xEE);
        write(value, buffer);
        Assert.Equal(value, read(buffer));
        Assert.True(buffer.AsSpan(size).IndexOfAnyExcept((byte)0xEE) < 0, $"{typeof(T).Name} wrote past its {size} bytes");
    }
}
