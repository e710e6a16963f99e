using System.Diagnostics;
using System.Reflection;

namespace Blockshot.Drivers.Tests.Raw;

/// <summary>
/// Allocation measurements only mean something for optimized code: a Debug build compiles async state
/// machines as classes, one allocation per call. Skipped (with the reason) unless the driver assembly
/// is optimized, e.g. <c>dotnet test -c Release</c>.
/// </summary>
internal static class OptimizedBuild
{
    public static string? SkipReason =>
        typeof(RawFileNode).Assembly.GetCustomAttribute<DebuggableAttribute>()?.IsJITOptimizerDisabled == true
            ? "allocation counts need an optimized build of Blockshot.Drivers (dotnet test -c Release)"
            : null;
}

[AttributeUsage(AttributeTargets.Method)]
public sealed class RequiresOptimizedBuildFactAttribute : FactAttribute
{
    public RequiresOptimizedBuildFactAttribute()
    {
        Skip = OptimizedBuild.SkipReason;
    }
}

[AttributeUsage(AttributeTargets.Method)]
public sealed class RequiresOptimizedBuildTheoryAttribute : TheoryAttribute
{
    public RequiresOptimizedBuildTheoryAttribute()
    {
        Skip = OptimizedBuild.SkipReason;
    }
}
