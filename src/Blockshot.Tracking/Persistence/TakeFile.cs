using System.Buffers.Binary;
using Blockshot.Core.Checksums;

namespace Blockshot.Tracking.Persistence;

/// <summary>
/// A snapshot's changes saved at its take: one bit per block. Layout (little-endian): magic "BSCBTTAK",
/// version, block size, block count, generation, since, then the bits, then a CRC-32C of everything
/// before it. Replaced atomically (temporary file, fsync, rename); a torn or foreign file reads as null.
/// </summary>
internal static class TakeFile
{
    private const int Version = 1;
    private const int HeaderSize = 48;
    private static readonly byte[] Magic = "BSCBTTAK"u8.ToArray();

    public static void Write(string path, Guid generation, int blockSize, long blockCount, byte since, Func<long, bool> changed)
    {
        var bits = (int)((blockCount + 7) >> 3);
        var data = new byte[HeaderSize + bits + 4];
        Magic.CopyTo(data, 0);
        BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(8), Version);
        BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(12), blockSize);
        BinaryPrimitives.WriteInt64LittleEndian(data.AsSpan(16), blockCount);
        generation.TryWriteBytes(data.AsSpan(24));
        data[40] = since;
        for (long b = 0; b < blockCount; b++)
        {
            if (changed(b))
            {
                data[HeaderSize + (b >> 3)] |= (byte)(1 << (int)(b & 7));
            }
        }
        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(data.Length - 4), Crc32C.Compute(data.AsSpan(0, data.Length - 4)));
        var temporary = path + ".tmp";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write))
        {
            stream.Write(data);
            stream.Flush(flushToDisk: true);
        }
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>The saved changes as a frozen map whose changed blocks hold <c>since + 1</c>; null unless the file matches.</summary>
    public static FrozenMap? Read(string path, Guid generation, int blockSize, long blockCount, byte since)
    {
        byte[] data;
        try
        {
            data = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        if (data.Length != HeaderSize + ((blockCount + 7) >> 3) + 4
            || !data.AsSpan(0, 8).SequenceEqual(Magic)
            || BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(data.Length - 4)) != Crc32C.Compute(data.AsSpan(0, data.Length - 4))
            || BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(8)) != Version
            || BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(12)) != blockSize
            || BinaryPrimitives.ReadInt64LittleEndian(data.AsSpan(16)) != blockCount
            || new Guid(data.AsSpan(24, 16)) != generation
            || data[40] != since || since == byte.MaxValue)
        {
            return null;
        }
        var pages = new byte[]?[(blockCount + ChangeMap.PageSize - 1) >> ChangeMap.PageShift];
        for (long b = 0; b < blockCount; b++)
        {
            if ((data[HeaderSize + (b >> 3)] & (1 << (int)(b & 7))) != 0)
            {
                var page = pages[b >> ChangeMap.PageShift] ??= new byte[ChangeMap.PageSize];
                page[b & (ChangeMap.PageSize - 1)] = (byte)(since + 1);
            }
        }
        return new FrozenMap(pages, blockCount);
    }
}
