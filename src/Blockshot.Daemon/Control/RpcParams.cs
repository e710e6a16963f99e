using System.Globalization;
using System.Text.Json;
using Blockshot.Daemon.Protocol;

namespace Blockshot.Daemon.Control;

/// <summary>
/// A method's parameters, already checked against its <see cref="ParamSpec"/>s (names, types, required
/// ones present), read by name. Range checks beyond the type are the handler's, with
/// <see cref="Invalid"/>.
/// </summary>
internal sealed class RpcParams
{
    private readonly Dictionary<string, JsonElement> _values;

    private RpcParams(Dictionary<string, JsonElement> values)
    {
        _values = values;
    }

    /// <summary>Checks <paramref name="element"/> (absent, an object, or an empty array) against <paramref name="specs"/>.</summary>
    public static RpcParams Bind(string method, JsonElement? element, IReadOnlyList<ParamSpec> specs)
    {
        var values = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        if (element is { } e)
        {
            if (e.ValueKind == JsonValueKind.Array && e.GetArrayLength() == 0)
            {
                // An empty positional list is the same as no parameters.
            }
            else if (e.ValueKind != JsonValueKind.Object)
            {
                throw Invalid($"{method}: params must be an object of named parameters");
            }
            else
            {
                foreach (var property in e.EnumerateObject())
                {
                    var spec = specs.FirstOrDefault(s => s.Name == property.Name)
                        ?? throw Invalid(specs.Count == 0
                            ? $"{method} takes no parameters (got '{property.Name}')"
                            : $"{method}: unknown parameter '{property.Name}' (it takes: {string.Join(", ", specs.Select(s => s.Name))})");
                    if (!values.TryAdd(property.Name, property.Value))
                    {
                        throw Invalid($"{method}: parameter '{property.Name}' is given twice");
                    }
                    CheckType(method, spec, property.Value);
                }
            }
        }
        foreach (var spec in specs)
        {
            if (spec.Required && !values.ContainsKey(spec.Name))
            {
                throw Invalid($"{method}: missing required parameter '{spec.Name}' ({ParamSpec.TypeName(spec.Type)}: {spec.Description})");
            }
        }
        return new RpcParams(values);
    }

    public static ControlException Invalid(string message) => new(ControlErrorCodes.InvalidParams, message);

    public bool Has(string name) => _values.ContainsKey(name) && _values[name].ValueKind != JsonValueKind.Null;

    public string String(string name) => OptionalString(name) ?? throw Invalid($"missing parameter '{name}'");

    public string? OptionalString(string name) => Has(name) ? _values[name].GetString() : null;

    public long Integer(string name, long fallback) => Has(name) ? _values[name].GetInt64() : fallback;

    public long? OptionalInteger(string name) => Has(name) ? _values[name].GetInt64() : null;

    public double Number(string name) => _values[name].GetDouble();

    public bool Boolean(string name, bool fallback = false) => Has(name) ? _values[name].GetBoolean() : fallback;

    public IReadOnlyList<string> Strings(string name) =>
        Has(name) ? [.. _values[name].EnumerateArray().Select(e => e.GetString()!)] : [];

    /// <summary>An object of scalars as text (numbers in invariant form, booleans as true/false).</summary>
    public IReadOnlyDictionary<string, string> Settings(string name)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!Has(name))
        {
            return result;
        }
        foreach (var property in _values[name].EnumerateObject())
        {
            result[property.Name] = property.Value.ValueKind switch
            {
                JsonValueKind.String => property.Value.GetString()!,
                JsonValueKind.True => "true",
                JsonValueKind.False => "false",
                _ => property.Value.GetRawText(),
            };
        }
        return result;
    }

    /// <summary>A duration in milliseconds, checked against a range.</summary>
    public TimeSpan Milliseconds(string name, TimeSpan fallback, long max = 3_600_000)
    {
        if (!Has(name))
        {
            return fallback;
        }
        var ms = _values[name].GetInt64();
        if (ms < 1 || ms > max)
        {
            throw Invalid($"'{name}' must be between 1 and {max.ToString(CultureInfo.InvariantCulture)} milliseconds");
        }
        return TimeSpan.FromMilliseconds(ms);
    }

    private static void CheckType(string method, ParamSpec spec, JsonElement value)
    {
        if (value.ValueKind == JsonValueKind.Null && !spec.Required)
        {
            return;
        }
        var ok = spec.Type switch
        {
            ParamType.String => value.ValueKind == JsonValueKind.String,
            ParamType.Integer => value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out _),
            ParamType.Number => value.ValueKind == JsonValueKind.Number,
            ParamType.Boolean => value.ValueKind is JsonValueKind.True or JsonValueKind.False,
            ParamType.Settings => value.ValueKind == JsonValueKind.Object
                && value.EnumerateObject().All(p => p.Value.ValueKind is JsonValueKind.String or JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False),
            ParamType.StringArray => value.ValueKind == JsonValueKind.Array && value.EnumerateArray().All(i => i.ValueKind == JsonValueKind.String),
            _ => false,
        };
        if (!ok)
        {
            var expected = spec.Type switch
            {
                ParamType.Settings => "an object of strings, numbers or booleans",
                ParamType.StringArray => "an array of strings",
                ParamType.Integer => "an integer",
                _ => "a " + ParamSpec.TypeName(spec.Type),
            };
            throw Invalid($"{method}: parameter '{spec.Name}' must be {expected} (got {Describe(value)})");
        }
    }

    private static string Describe(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Number => "a number",
        JsonValueKind.String => "a string",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        JsonValueKind.Null => "null",
        _ => value.ValueKind.ToString(),
    };
}
