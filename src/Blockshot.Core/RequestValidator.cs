namespace Blockshot.Core;

/// <summary>
/// The one place requests are checked: range, flags and direction, with the error an export must
/// report for each (write past the end: NoSpace; other out-of-range: Invalid; write to read-only:
/// ReadOnly). Everything below the graph entry asserts instead.
/// </summary>
public static class RequestValidator
{
    /// <summary>Checks a read, cache or status query.</summary>
    public static void CheckRead(long offset, long length, long size, IoFlags flags)
    {
        if (flags != IoFlags.None)
        {
            BlockThrow.Error(BlockError.Invalid, $"flags {flags} are not valid on a read");
        }
        CheckRange(offset, length, size);
    }

    /// <summary>Checks a write.</summary>
    public static void CheckWrite(NodeCapabilities caps, bool readOnly, long offset, long length, long size, IoFlags flags)
    {
        if (readOnly || !caps.CanWrite)
        {
            BlockThrow.Error(BlockError.ReadOnly, "the device is read-only");
        }
        if ((flags & ~IoFlags.Fua) != 0)
        {
            BlockThrow.Error(BlockError.Invalid, $"flags {flags} are not valid on a write");
        }
        CheckWriteRange(offset, length, size);
    }

    /// <summary>Checks a write-zeroes.</summary>
    public static void CheckWriteZeroes(NodeCapabilities caps, bool readOnly, long offset, long length, long size, IoFlags flags)
    {
        if (readOnly || !caps.CanWrite)
        {
            BlockThrow.Error(BlockError.ReadOnly, "the device is read-only");
        }
        CheckWriteRange(offset, length, size);
    }

    /// <summary>Checks a trim. A node without writes may still accept trims (a read-once snapshot).</summary>
    public static void CheckTrim(NodeCapabilities caps, bool readOnly, long offset, long length, long size, IoFlags flags)
    {
        if (readOnly || !(caps.CanWrite || caps.Has(NodeFeatures.Trim)))
        {
            BlockThrow.Error(BlockError.ReadOnly, "the device is read-only");
        }
        if ((flags & ~IoFlags.Fua) != 0)
        {
            BlockThrow.Error(BlockError.Invalid, $"flags {flags} are not valid on a trim");
        }
        CheckRange(offset, length, size);
    }

    /// <summary>Checks that <c>[offset, offset + length)</c> lies inside the device.</summary>
    public static void CheckRange(long offset, long length, long size)
    {
        if (!InRange(offset, length, size))
        {
            BlockThrow.OutOfRange(offset, length, size);
        }
    }

    /// <summary>True when <c>[offset, offset + length)</c> lies inside the device (what <see cref="CheckRange"/> checks).</summary>
    public static bool InRange(long offset, long length, long size) =>
        offset >= 0 && length >= 0 && offset <= size && length <= size - offset;

    private static void CheckWriteRange(long offset, long length, long size)
    {
        if (offset < 0 || length < 0)
        {
            BlockThrow.OutOfRange(offset, length, size);
        }
        if (offset > size || length > size - offset)
        {
            BlockThrow.WritePastEnd(offset, length, size);
        }
    }
}
