using System.Text.Json.Serialization;

namespace Blockshot.Daemon.Protocol;

/// <summary>Source-generated JSON for every protocol type: kebab-case names, nulls left out.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.KebabCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    IgnoreReadOnlyProperties = true)]
[JsonSerializable(typeof(DeviceInfo))]
[JsonSerializable(typeof(List<DeviceInfo>))]
[JsonSerializable(typeof(ExportInfo))]
[JsonSerializable(typeof(List<ExportInfo>))]
[JsonSerializable(typeof(FilterInfo))]
[JsonSerializable(typeof(JobInfo))]
[JsonSerializable(typeof(List<JobInfo>))]
[JsonSerializable(typeof(DaemonInfo))]
[JsonSerializable(typeof(DescribeInfo))]
[JsonSerializable(typeof(List<FilterTypeDescription>))]
[JsonSerializable(typeof(EventMessage))]
[JsonSerializable(typeof(SnapshotInfo))]
[JsonSerializable(typeof(List<SnapshotInfo>))]
[JsonSerializable(typeof(CbtInfo))]
[JsonSerializable(typeof(CbtMap))]
public sealed partial class ProtocolJsonContext : JsonSerializerContext
{
}
