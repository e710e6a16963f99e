using System.Text.Json;

namespace Blockshot.Daemon.Config;

/// <summary>
/// Reads the JSON configuration (comments and trailing commas allowed) and checks everything that can be
/// checked without opening images: shapes, types, unknown keys, names, references between devices and
/// exports, filter settings. Collects every error with its JSON path rather than stopping at the first.
/// </summary>
public static class ConfigLoader
{
    private static readonly JsonDocumentOptions Options = new() { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true, MaxDepth = 32 };

    /// <summary>Loads and checks <paramref name="path"/>; throws <see cref="ConfigException"/> listing every error.</summary>
    public static DaemonConfig Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException(path, [$"$: cannot read the file: {e.Message}"]);
        }
        return Parse(text, path, Path.GetDirectoryName(Path.GetFullPath(path)) ?? "/");
    }

    /// <summary>Parses configuration text; relative image paths resolve against <paramref name="baseDirectory"/>.</summary>
    public static DaemonConfig Parse(string text, string source, string baseDirectory)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(text, Options);
        }
        catch (JsonException e)
        {
            throw new ConfigException(source, [$"$: not valid JSON: {e.Message}"]);
        }
        using (document)
        {
            var reader = new ConfigReader(baseDirectory);
            var config = reader.ReadRoot(document.RootElement);
            if (reader.Errors.Count > 0)
            {
                throw new ConfigException(source, reader.Errors);
            }
            return config;
        }
    }
}
