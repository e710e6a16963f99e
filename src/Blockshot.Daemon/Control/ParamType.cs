namespace Blockshot.Daemon.Control;

/// <summary>The JSON types a parameter may have.</summary>
internal enum ParamType
{
    String,
    Integer,
    Number,
    Boolean,

    /// <summary>An object of string keys to scalar values (given as text to the callee).</summary>
    Settings,

    StringArray,
}
