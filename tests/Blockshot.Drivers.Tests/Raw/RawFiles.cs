using Blockshot.Core.Buffers;

namespace Blockshot.Drivers.Tests.Raw;

/// <summary>Helpers to make image files for the raw driver tests.</summary>
public static class RawFiles
{
    /// <summary>Creates (or replaces) a sparse zero-filled file of <paramref name="size"/> bytes.</summary>
    public static string CreateSparse(string path, long size)
    {
        using (var stream = new FileStream(path, FileMode.Create, FileAccess.Write))
        {
            stream.SetLength(size);
        }
        return path;
    }

    /// <summary>Options for a test: locking on, a private pool to check for leaks.</summary>
    public static RawFileOptions Options(BufferPool pool, bool direct = false, bool readOnly = false) =>
        new() { Direct = direct, ReadOnly = readOnly, BufferPool = pool };
}
