namespace Blockshot.Testing;

/// <summary>
/// What a device should contain after a sequence of requests: the bytes, plus which bytes are
/// unspecified because they were trimmed (a trim may or may not zero them).
/// </summary>
public sealed class ReferenceModel
{
    private readonly byte[] _data;
    private readonly bool[] _unknown;

    /// <summary>Creates a model of a zero-filled device.</summary>
    public ReferenceModel(int size)
    {
        _data = new byte[size];
        _unknown = new bool[size];
    }

    /// <summary>The device size.</summary>
    public int Size => _data.Length;

    /// <summary>Records a write.</summary>
    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        data.CopyTo(_data.AsSpan((int)offset));
        _unknown.AsSpan((int)offset, data.Length).Clear();
    }

    /// <summary>Records a write-zeroes.</summary>
    public void Zero(long offset, long length)
    {
        _data.AsSpan((int)offset, (int)length).Clear();
        _unknown.AsSpan((int)offset, (int)length).Clear();
    }

    /// <summary>Records a trim; <paramref name="zeroes"/> says whether the node guarantees zeros after it.</summary>
    public void Trim(long offset, long length, bool zeroes)
    {
        if (zeroes)
        {
            Zero(offset, length);
        }
        else
        {
            _unknown.AsSpan((int)offset, (int)length).Fill(true);
        }
    }

    /// <summary>The expected bytes of a range.</summary>
    public ReadOnlySpan<byte> Expected(long offset, int length) => _data.AsSpan((int)offset, length);

    /// <summary>Fails with the first byte of <paramref name="actual"/> that differs from the model.</summary>
    public void Verify(long offset, ReadOnlySpan<byte> actual, string context)
    {
        var expected = Expected(offset, actual.Length);
        for (var i = 0; i < actual.Length; i++)
        {
            if (actual[i] != expected[i] && !_unknown[offset + i])
            {
                throw new Xunit.Sdk.XunitException(
                    $"{context}: byte at {offset + i} is 0x{actual[i]:x2}, expected 0x{expected[i]:x2}");
            }
        }
    }

    /// <summary>True when every byte of the range is known to be zero.</summary>
    public bool IsZero(long offset, long length)
    {
        for (var i = offset; i < offset + length; i++)
        {
            if (_data[i] != 0 || _unknown[i])
            {
                return false;
            }
        }
        return true;
    }
}
