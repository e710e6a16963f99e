using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;

namespace Blockshot.Cli.Client;

/// <summary>Writes results to stdout: JSON for <c>--output json</c>, text otherwise.</summary>
internal static class Printer
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>One-line JSON without escaping non-ASCII text (for streams such as events).</summary>
    public static readonly JsonSerializerOptions Compact = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static void Json(JsonNode? node) => Console.Out.WriteLine(node?.ToJsonString(Indented) ?? "null");

    public static void Json<T>(T value, JsonTypeInfo<T> type) => Json(JsonSerializer.SerializeToNode(value, type));

    public static void Line(string text) => Console.Out.WriteLine(text);

    public static string Mode(bool readOnly) => readOnly ? "read-only" : "read-write";
}
