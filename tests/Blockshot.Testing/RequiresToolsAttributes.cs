using Xunit;

namespace Blockshot.Testing;

/// <summary>A fact that is skipped, with the reason shown, when a tool it drives is not installed.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class RequiresToolsFactAttribute : FactAttribute
{
    /// <summary>Names the tools the test needs.</summary>
    public RequiresToolsFactAttribute(params string[] tools)
    {
        Skip = Tools.MissingReason(tools);
    }
}

/// <summary>A theory that is skipped, with the reason shown, when a tool it drives is not installed.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class RequiresToolsTheoryAttribute : TheoryAttribute
{
    /// <summary>Names the tools the test needs.</summary>
    public RequiresToolsTheoryAttribute(params string[] tools)
    {
        Skip = Tools.MissingReason(tools);
    }
}

/// <summary>A fact that needs root and the named tools; skipped with the reason otherwise.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class RequiresRootFactAttribute : FactAttribute
{
    /// <summary>Names the tools the test needs besides root.</summary>
    public RequiresRootFactAttribute(params string[] tools)
    {
        Skip = !Tools.IsRoot ? "requires root" : Tools.MissingReason(tools);
    }
}

/// <summary>A fact that needs a kernel at least as new as the one named; skipped with the reason otherwise.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class RequiresKernelFactAttribute : FactAttribute
{
    /// <summary>Names the oldest kernel (major.minor) with <paramref name="feature"/>.</summary>
    public RequiresKernelFactAttribute(int major, int minor, string feature)
    {
        var running = Environment.OSVersion.Version;
        if (!OperatingSystem.IsLinux() || running < new Version(major, minor))
        {
            Skip = $"requires Linux {major}.{minor} or later for {feature}; this is {Environment.OSVersion.VersionString}";
        }
    }
}
