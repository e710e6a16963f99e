using Blockshot.Qcow2.Format;

namespace Blockshot.Qcow2.Tests;

public class FormatRoundTripTests
{
    [Fact]
    public void V3_header_round_trips_every_field_and_unknown_tail()
    {
        var h = new Qcow2Header
        {
            Version = 3,
            BackingFileOffset = 0x210,
            BackingFileSize = 7,
            ClusterBits = 17,
            Size = 0x123456789,
            CryptMethod = 0,
            L1Size = 77,
            L1TableOffset = 0x30000,
            RefcountTableOffset = 0x10000,
            RefcountTableClusters = 3,
            SnapshotCount = 2,
            SnapshotsOffset = 0x90000,
            Incompatible = IncompatibleFeatures.Dirty | IncompatibleFeatures.ExtendedL2 | (IncompatibleFeatures)(1UL << 20),
            Compatible = CompatibleFeatures.LazyRefcounts | (CompatibleFeatures)(1UL << 40),
            Autoclear = AutoclearFeatures.Bitmaps,
            RefcountOrder = 5,
            HeaderLength = 128,
            CompressionType = CompressionType.Zstd,
            ExtraFields = Enumerable.Range(0, 128 - 105).Select(i => (byte)(i * 7)).ToArray(),
        };
        var buffer = new byte[512];
        Assert.Equal(128, h.WriteTo(buffer));
        var back = Qcow2Header.Parse(buffer);
        var again = new byte[512];
        back.WriteTo(again);
        Assert.Equal(buffer, again);
        Assert.Equal(h.Size, back.Size);
        Assert.Equal(h.Incompatible, back.Incompatible);
        Assert.Equal(h.Compatible, back.Compatible);
        Assert.Equal(CompressionType.Zstd, back.CompressionType);
        Assert.Equal(128u, back.HeaderLength);
        Assert.Equal(h.ExtraFields, back.ExtraFields);
    }

    [Fact]
    public void V2_header_is_72_bytes_and_assumes_order_4()
    {
        var h = new Qcow2Header { Version = 2, Size = 1 << 30, L1Size = 2, L1TableOffset = 0x30000, RefcountTableOffset = 0x10000, RefcountTableClusters = 1 };
        var buffer = new byte[4096];
        Assert.Equal(72, h.WriteTo(buffer));
        var back = Qcow2Header.Parse(buffer);
        Assert.Equal(4u, back.RefcountOrder);
        Assert.Equal(72, back.ExtensionsOffset);
        Assert.Equal(16, back.RefcountBits);
    }

    [Fact]
    public void Header_cluster_round_trips_extensions_and_keeps_unknown_ones_byte_for_byte()
    {
        var hc = new Qcow2HeaderCluster
        {
            Header = new Qcow2Header { Size = 1 << 20, L1Size = 1, L1TableOffset = 0x30000, RefcountTableOffset = 0x10000, RefcountTableClusters = 1 },
            BackingFile = "../base image.qcow2",
            BackingFormat = "qcow2",
            DataFile = "data.raw",
            FeatureNames = [.. FeatureNameTable.Known],
            Bitmaps = new BitmapsExtension(2, 0, 96, 0x70000),
            Encryption = new EncryptionHeaderExtension(0x80000, 2048),
        };
        hc.UnknownExtensions.Add(new HeaderExtension(0x12345678, [1, 2, 3, 4, 5]));
        hc.UnknownExtensions.Add(new HeaderExtension(0x0badf00d, []));
        var cluster = new byte[65536];
        hc.WriteTo(cluster);
        var back = Qcow2HeaderCluster.Parse(cluster);
        Assert.Equal(hc.BackingFile, back.BackingFile);
        Assert.Equal("qcow2", back.BackingFormat);
        Assert.Equal("data.raw", back.DataFile);
        Assert.Equal(FeatureNameTable.Known, back.FeatureNames);
        Assert.Equal(hc.Bitmaps, back.Bitmaps);
        Assert.Equal(hc.Encryption, back.Encryption);
        Assert.Equal(hc.UnknownExtensions, back.UnknownExtensions);
        var again = new byte[65536];
        back.WriteTo(again);
        Assert.Equal(cluster, again);
    }

    [Fact]
    public void Extension_longer_than_the_area_is_rejected()
    {
        var cluster = new byte[512];
        new Qcow2Header { ClusterBits = 9, HeaderLength = 112 }.WriteTo(cluster);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(cluster.AsSpan(112), 0x11111111);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(cluster.AsSpan(116), 1000);
        var e = Assert.Throws<Blockshot.Core.BlockException>(() => Qcow2HeaderCluster.Parse(cluster));
        Assert.Contains("too large", e.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    public void Refcount_entries_round_trip_for_every_order(int order)
    {
        var block = new byte[512];
        var entries = RefcountBlock.EntriesPerBlock(512, order);
        var max = RefcountBlock.MaxValue(order);
        var rng = new Random(order);
        var expected = new ulong[entries];
        for (var i = 0; i < entries; i++)
        {
            expected[i] = order == 6 ? (ulong)rng.NextInt64() : (ulong)rng.NextInt64(0, (long)max + 1);
            RefcountBlock.Set(block, i, order, expected[i]);
        }
        for (var i = 0; i < entries; i++)
        {
            Assert.Equal(expected[i], RefcountBlock.Get(block, i, order));
        }
        Assert.Throws<ArgumentOutOfRangeException>(() =>
        {
            if (order < 6)
            {
                RefcountBlock.Set(block, 0, order, max + 1);
            }
            else
            {
                throw new ArgumentOutOfRangeException();
            }
        });
    }

    [Fact]
    public void Sub_byte_refcounts_pack_least_significant_bit_first()
    {
        var block = new byte[8];
        for (var i = 0; i < 6; i++)
        {
            RefcountBlock.Set(block, i, 0, 1);
        }
        Assert.Equal(0x3f, block[0]);
        var two = new byte[2];
        RefcountBlock.Set(two, 0, 1, 1);
        RefcountBlock.Set(two, 1, 1, 3);
        Assert.Equal(0b1101, two[0]);
        var four = new byte[2];
        RefcountBlock.Set(four, 1, 2, 0xa);
        Assert.Equal(0xa0, four[0]);
    }

    [Fact]
    public void Standard_and_extended_l2_entries_round_trip_and_classify()
    {
        var table = new byte[64];
        var e = new L2Entry(L2Entry.Copied | 0x50000, 0x0000000300000004);
        e.Write(table, 1, extendedL2: true);
        Assert.Equal(e, L2Entry.Read(table, 1, extendedL2: true));
        Assert.Equal(ClusterType.Normal, e.Classify(true, false));
        Assert.Equal(SubclusterType.ZeroAllocated, e.ClassifySubcluster(0, true, false));
        Assert.Equal(SubclusterType.Normal, e.ClassifySubcluster(2, true, false));
        Assert.Equal(SubclusterType.UnallocatedAllocated, e.ClassifySubcluster(3, true, false));

        Assert.Equal(ClusterType.ZeroPlain, new L2Entry(1).Classify(false, false));
        Assert.Equal(ClusterType.ZeroAllocated, new L2Entry(0x8000000000050001).Classify(false, false));
        Assert.Equal(ClusterType.Unallocated, new L2Entry(L2Entry.Copied).Classify(false, false));
        Assert.Equal(ClusterType.Normal, new L2Entry(L2Entry.Copied).Classify(false, true));
        Assert.Equal(SubclusterType.Invalid, new L2Entry(L2Entry.Copied | 0x50000, 0x100000001).ClassifySubcluster(5, true, false));
        Assert.Equal(SubclusterType.Invalid, new L2Entry(0, 1).ClassifySubcluster(5, true, false));
    }

    [Fact]
    public void Compressed_descriptor_matches_a_known_entry()
    {
        // An entry written by the peer tool for 64 KiB clusters: offset 0x5004f, 67 extra sectors.
        var d = CompressedDescriptor.Decode(0x50c000000005004f, 16);
        Assert.Equal(0x5004f, d.HostOffset);
        Assert.Equal(68, d.Sectors);
        Assert.Equal(0x50c000000005004fUL & ~L2Entry.Copied, d.Encode(16));
        Assert.Equal(68 * 512 - 0x4f, d.ByteLength);
        var f = CompressedDescriptor.For(0x5004f, 68 * 512 - 0x4f);
        Assert.Equal(d, f);
        for (var bits = 9; bits <= 21; bits++)
        {
            var c = CompressedDescriptor.For(123457, (1 << bits) - 1);
            Assert.Equal(c, CompressedDescriptor.Decode(c.Encode(bits), bits));
        }
    }

    [Fact]
    public void Snapshot_entry_round_trips_with_unknown_extra_data()
    {
        var s = new SnapshotEntry
        {
            L1TableOffset = 0x70000,
            L1Size = 2,
            Id = "1",
            Name = "before upgrade",
            DateSeconds = 1795241944,
            DateNanoseconds = 205098000,
            VmClockNanoseconds = 99,
            VmStateSize32 = 0,
            ExtraData = [.. SnapshotEntry.StandardExtraData(0, 1 << 30, 0), 9, 9, 9, 9, 9, 9, 9, 9],
        };
        var buffer = new byte[256];
        var n = s.WriteTo(buffer);
        Assert.Equal(0, n % 8);
        var back = SnapshotEntry.Parse(buffer, out var consumed);
        Assert.Equal(n, consumed);
        Assert.Equal("before upgrade", back.Name);
        Assert.Equal((ulong)(1 << 30), back.DiskSize);
        Assert.Equal(0UL, back.Icount);
        var again = new byte[256];
        back.WriteTo(again);
        Assert.Equal(buffer, again);
    }

    [Fact]
    public void Bitmap_directory_entry_round_trips()
    {
        var b = new BitmapDirectoryEntry
        {
            TableOffset = 0xa0000,
            TableSize = 1,
            Flags = BitmapFlags.Auto | BitmapFlags.InUse,
            GranularityBits = 16,
            Name = "b1",
            ExtraData = [1, 2, 3],
        };
        var buffer = new byte[64];
        var n = b.WriteTo(buffer);
        Assert.Equal(32, n);
        var back = BitmapDirectoryEntry.Parse(buffer, out var consumed);
        Assert.Equal(32, consumed);
        var again = new byte[64];
        back.WriteTo(again);
        Assert.Equal(buffer, again);
    }

    [RequiresToolsTheory("qemu-img")]
    [InlineData("compat=1.1")]
    [InlineData("compat=0.10")]
    [InlineData("compat=1.1,compression_type=zstd,refcount_bits=8")]
    [InlineData("compat=1.1,extended_l2=on,cluster_size=128k,lazy_refcounts=on")]
    public void Header_clusters_written_by_the_peer_tool_round_trip_exactly(string options)
    {
        using var dir = new TempDir();
        var basePath = dir.File("base.qcow2");
        Qemu.Img("create", "-f", "qcow2", basePath, "64M");
        var path = dir.File("img.qcow2");
        Qemu.Img("create", "-f", "qcow2", "-o", options, "-b", basePath, "-F", "qcow2", path, "64M");
        if (!options.Contains("0.10", StringComparison.Ordinal))
        {
            Qemu.Img("bitmap", "--add", path, "b0");
        }
        var bytes = File.ReadAllBytes(path);
        var hc = Qcow2HeaderCluster.Parse(bytes);
        var size = hc.Header.ClusterSize;
        var again = new byte[size];
        hc.WriteTo(again);
        Assert.Equal(bytes.AsSpan(0, size).ToArray(), again);
        Assert.Equal(basePath, hc.BackingFile);
        Assert.Equal("qcow2", hc.BackingFormat);
    }
}
