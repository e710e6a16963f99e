namespace Blockshot.Drivers.Tests.Raw;

/// <summary>A fact that only means something when not root (root passes permission checks); skipped as root.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class RequiresNonRootFactAttribute : FactAttribute
{
    public RequiresNonRootFactAttribute()
    {
        Skip = Tools.IsRoot ? "root bypasses file permissions, so the check cannot fail" : null;
    }
}
