namespace Blockshot.Drivers.Tests.Raw;

/// <summary>A tmpfs of a given size mounted inside a temporary directory (root only); unmounted on dispose.</summary>
public sealed class TmpfsMount : IAsyncDisposable
{
    private TmpfsMount(string path)
    {
        Path = path;
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public static async Task<TmpfsMount> CreateAsync(TempDir parent, string size)
    {
        var path = parent.File("tmpfs");
        Directory.CreateDirectory(path);
        await ToolRun.CheckAsync("mount", "-t", "tmpfs", "-o", $"size={size}", "tmpfs", path);
        return new TmpfsMount(path);
    }

    public async ValueTask DisposeAsync() => await ToolRun.CheckAsync("umount", Path);
}
