using Blockshot.Daemon.Protocol;

namespace Blockshot.Daemon.Control;

/// <summary>One parameter of a method: checked before the handler runs and listed by <c>describe</c>.</summary>
internal sealed record ParamSpec(string Name, ParamType Type, bool Required, string Description, string? Default = null)
{
    public static ParamSpec Req(string name, ParamType type, string description) => new(name, type, true, description);

    public static ParamSpec Opt(string name, ParamType type, string description, string? defaultValue = null) =>
        new(name, type, false, description, defaultValue);

    public ParamInfo ToInfo() => new()
    {
        Name = Name,
        Type = TypeName(Type),
        Required = Required,
        Description = Description,
        Default = Default,
    };

    public static string TypeName(ParamType type) => type switch
    {
        ParamType.String => "string",
        ParamType.Integer => "integer",
        ParamType.Number => "number",
        ParamType.Boolean => "boolean",
        ParamType.Settings => "object",
        ParamType.StringArray => "string-array",
        _ => "unknown",
    };
}
