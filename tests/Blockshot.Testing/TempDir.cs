namespace Blockshot.Testing;

/// <summary>A scratch directory removed on dispose (kept when BLOCKSHOT_KEEP_TEMP is set).</summary>
public sealed class TempDir : IDisposable
{
    /// <summary>Creates a fresh directory under the system temp directory.</summary>
    public TempDir(string prefix = "blockshot-test")
    {
        Path = Directory.CreateTempSubdirectory(prefix + "-").FullName;
    }

    /// <summary>The directory.</summary>
    public string Path { get; }

    /// <summary>A path inside the directory.</summary>
    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <inheritdoc/>
    public void Dispose()
    {
        if (Environment.GetEnvironmentVariable("BLOCKSHOT_KEEP_TEMP") is null && Directory.Exists(Path))
        {
            Directory.Delete(Path, recursive: true);
        }
    }
}
