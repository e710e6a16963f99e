namespace Blockshot.Core;

/// <summary>Flags carried by write-type requests.</summary>
[Flags]
public enum IoFlags
{
    /// <summary>No flags.</summary>
    None = 0,

    /// <summary>Force unit access: the data is durable before the request completes.</summary>
    Fua = 1,

    /// <summary>Write-zeroes may deallocate the range instead of writing zeros.</summary>
    MayTrim = 2,

    /// <summary>Write-zeroes must be fast (no slower than a read); otherwise fail with NotSupported.</summary>
    FastZero = 4,
}
