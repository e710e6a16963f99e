using System.Text;
using System.Text.Json;

namespace Blockshot.Cli.Commands.Image;

/// <summary>JSON laid out as the reference tool lays it out: four-space indentation.</summary>
internal static class JsonText
{
    /// <summary>Writer options: indented by four spaces.</summary>
    public static JsonWriterOptions Options { get; } = new()
    {
        Indented = true,
        IndentSize = 4,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>The same JSON, re-indented by four spaces.</summary>
    public static string Reindent(string json)
    {
        using var doc = JsonDocument.Parse(json);
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, Options))
        {
            doc.WriteTo(w);
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }
}
