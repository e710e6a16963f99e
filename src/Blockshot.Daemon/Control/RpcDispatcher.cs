using System.Buffers;
using System.Text.Json;
using Blockshot.Core;
using Blockshot.Daemon.Devices;
using Blockshot.Daemon.Protocol;
using Blockshot.Drivers;
using Blockshot.Filters;
using Microsoft.Extensions.Logging;

namespace Blockshot.Daemon.Control;

/// <summary>
/// Turns one line of input into the line to answer with: JSON-RPC 2.0 requests, notifications and
/// batches, checked at every step. Whatever arrives — bad JSON, wrong shapes, unknown methods, wrong
/// parameters, handlers that fail — ends as an error object, never as an exception out of here.
/// </summary>
internal sealed class RpcDispatcher
{
    public const string ProtocolName = "blockshot-control/1";
    public const string ProtocolVersion = "1.0";
    public const int MaxBatch = 256;

    private static readonly JsonDocumentOptions ParseOptions = new() { MaxDepth = 64 };

    private readonly Dictionary<string, RpcMethod> _methods = new(StringComparer.Ordinal);
    private readonly ILogger _logger;

    public RpcDispatcher(ILogger logger)
    {
        _logger = logger;
    }

    public IReadOnlyList<RpcMethod> Methods => [.. _methods.Values.OrderBy(m => m.Name, StringComparer.Ordinal)];

    public void Add(IEnumerable<RpcMethod> methods)
    {
        foreach (var method in methods)
        {
            _methods.Add(method.Name, method);
        }
    }

    /// <summary>Handles one line; returns the reply (without the newline), or null when none is due.</summary>
    public async Task<byte[]?> HandleAsync(ReadOnlyMemory<byte> line, RpcContext context, CancellationToken cancellationToken)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(line, ParseOptions);
        }
        catch (JsonException e)
        {
            DaemonLog.BadInput(_logger, context.ConnectionId, e.Message);
            return ErrorReply(default, ControlErrorCodes.ParseError, $"parse error: {e.Message}");
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Array)
            {
                return await HandleOneAsync(root, context, cancellationToken).ConfigureAwait(false);
            }
            var count = root.GetArrayLength();
            if (count == 0 || count > MaxBatch)
            {
                return ErrorReply(default, ControlErrorCodes.InvalidRequest,
                    count == 0 ? "an empty batch is not a request" : $"a batch holds at most {MaxBatch} requests");
            }
            var replies = new List<byte[]>(count);
            foreach (var request in root.EnumerateArray())
            {
                if (await HandleOneAsync(request, context, cancellationToken).ConfigureAwait(false) is { } reply)
                {
                    replies.Add(reply);
                }
            }
            return replies.Count == 0 ? null : JoinBatch(replies);
        }
    }

    private async Task<byte[]?> HandleOneAsync(JsonElement request, RpcContext context, CancellationToken cancellationToken)
    {
        if (request.ValueKind != JsonValueKind.Object)
        {
            return ErrorReply(default, ControlErrorCodes.InvalidRequest, "a request must be a JSON object");
        }
        JsonElement id = default;
        var hasId = request.TryGetProperty("id", out var idElement);
        if (hasId)
        {
            if (idElement.ValueKind is not (JsonValueKind.String or JsonValueKind.Number or JsonValueKind.Null))
            {
                return ErrorReply(default, ControlErrorCodes.InvalidRequest, "'id' must be a string, a number or null");
            }
            id = idElement;
        }
        if (!request.TryGetProperty("jsonrpc", out var version) || version.ValueKind != JsonValueKind.String || version.GetString() != "2.0")
        {
            return ErrorReply(id, ControlErrorCodes.InvalidRequest, "'jsonrpc' must be \"2.0\"");
        }
        if (!request.TryGetProperty("method", out var methodElement) || methodElement.ValueKind != JsonValueKind.String)
        {
            return ErrorReply(id, ControlErrorCodes.InvalidRequest, "'method' must be a string");
        }
        var name = methodElement.GetString()!;
        foreach (var property in request.EnumerateObject())
        {
            if (property.Name is not ("jsonrpc" or "id" or "method" or "params"))
            {
                return ErrorReply(id, ControlErrorCodes.InvalidRequest, $"unknown member '{property.Name}' in the request");
            }
        }
        byte[] reply;
        if (!_methods.TryGetValue(name, out var method))
        {
            reply = ErrorReply(id, ControlErrorCodes.MethodNotFound, $"no method named '{name}' (call 'describe' for the list)");
        }
        else
        {
            reply = await InvokeAsync(method, request.TryGetProperty("params", out var p) ? p : null, id, context, cancellationToken).ConfigureAwait(false);
        }
        return hasId ? reply : null;
    }

    private async Task<byte[]> InvokeAsync(RpcMethod method, JsonElement? parameters, JsonElement id, RpcContext context, CancellationToken cancellationToken)
    {
        try
        {
            var bound = RpcParams.Bind(method.Name, parameters, method.Params);
            var result = await method.Handler(bound, context, cancellationToken).ConfigureAwait(false);
            return Reply(id, writer =>
            {
                writer.WritePropertyName("result");
                if (result is null)
                {
                    writer.WriteNullValue();
                }
                else
                {
                    result.WriteTo(writer);
                }
            });
        }
        catch (Exception e)
        {
            var (code, message) = Map(e, cancellationToken);
            if (code == ControlErrorCodes.InternalError)
            {
                DaemonLog.RequestCrashed(_logger, context.ConnectionId, method.Name, e);
            }
            else
            {
                DaemonLog.RequestFailed(_logger, context.ConnectionId, method.Name, code, message);
            }
            return ErrorReply(id, code, message);
        }
    }

    private static (int Code, string Message) Map(Exception e, CancellationToken cancellationToken) => e switch
    {
        ControlException c => (c.Code, c.Message),
        FilterSettingsException f => (ControlErrorCodes.InvalidParams, f.Message),
        ImageOpenException o => (LeafOpener.Translate(o).Code, o.Message),
        BlockException b => (ControlErrorCodes.IoError, b.Message),
        TimeoutException t => (ControlErrorCodes.Timeout, t.Message),
        OperationCanceledException when cancellationToken.IsCancellationRequested => (ControlErrorCodes.ShuttingDown, "the daemon is shutting down"),
        UnauthorizedAccessException u => (ControlErrorCodes.PermissionDenied, u.Message),
        IOException io => (ControlErrorCodes.IoError, io.Message),
        _ => (ControlErrorCodes.InternalError, $"internal error ({e.GetType().Name}): {e.Message}"),
    };

    public static byte[] ErrorReply(JsonElement id, int code, string message) => Reply(id, writer =>
    {
        writer.WriteStartObject("error");
        writer.WriteNumber("code", code);
        writer.WriteString("message", message);
        writer.WriteStartObject("data");
        writer.WriteString("error", ControlErrorCodes.NameOf(code));
        writer.WriteEndObject();
        writer.WriteEndObject();
    });

    private static byte[] Reply(JsonElement id, Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("jsonrpc", "2.0");
            writer.WritePropertyName("id");
            if (id.ValueKind == JsonValueKind.Undefined)
            {
                writer.WriteNullValue();
            }
            else
            {
                id.WriteTo(writer);
            }
            body(writer);
            writer.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static byte[] JoinBatch(List<byte[]> replies)
    {
        var length = 2 + replies.Sum(r => r.Length) + replies.Count - 1;
        var result = new byte[length];
        var at = 0;
        result[at++] = (byte)'[';
        for (var i = 0; i < replies.Count; i++)
        {
            if (i > 0)
            {
                result[at++] = (byte)',';
            }
            replies[i].CopyTo(result, at);
            at += replies[i].Length;
        }
        result[at] = (byte)']';
        return result;
    }
}
