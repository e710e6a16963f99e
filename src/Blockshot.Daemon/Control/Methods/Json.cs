using System.Text.Json;
using System.Text.Json.Nodes;
using Blockshot.Daemon.Protocol;

namespace Blockshot.Daemon.Control.Methods;

/// <summary>Results as JSON nodes, through the source-generated protocol context.</summary>
internal static class Json
{
    public static JsonNode? Of(DeviceInfo value) => JsonSerializer.SerializeToNode(value, ProtocolJsonContext.Default.DeviceInfo);

    public static JsonNode? Of(IEnumerable<DeviceInfo> value) => JsonSerializer.SerializeToNode(value.ToList(), ProtocolJsonContext.Default.ListDeviceInfo);

    public static JsonNode? Of(ExportInfo value) => JsonSerializer.SerializeToNode(value, ProtocolJsonContext.Default.ExportInfo);

    public static JsonNode? Of(IEnumerable<ExportInfo> value) => JsonSerializer.SerializeToNode(value.ToList(), ProtocolJsonContext.Default.ListExportInfo);

    public static JsonNode? Of(JobInfo value) => JsonSerializer.SerializeToNode(value, ProtocolJsonContext.Default.JobInfo);

    public static JsonNode? Of(IEnumerable<JobInfo> value) => JsonSerializer.SerializeToNode(value.ToList(), ProtocolJsonContext.Default.ListJobInfo);

    public static JsonNode? Of(DaemonInfo value) => JsonSerializer.SerializeToNode(value, ProtocolJsonContext.Default.DaemonInfo);

    public static JsonNode? Of(DescribeInfo value) => JsonSerializer.SerializeToNode(value, ProtocolJsonContext.Default.DescribeInfo);

    public static JsonNode? Of(List<FilterTypeDescription> value) => JsonSerializer.SerializeToNode(value, ProtocolJsonContext.Default.ListFilterTypeDescription);

    public static JsonNode? Of(SnapshotInfo value) => JsonSerializer.SerializeToNode(value, ProtocolJsonContext.Default.SnapshotInfo);

    public static JsonNode? Of(IEnumerable<SnapshotInfo> value) => JsonSerializer.SerializeToNode(value.ToList(), ProtocolJsonContext.Default.ListSnapshotInfo);

    public static JsonNode? Of(CbtInfo value) => JsonSerializer.SerializeToNode(value, ProtocolJsonContext.Default.CbtInfo);

    public static JsonNode? Of(CbtMap value) => JsonSerializer.SerializeToNode(value, ProtocolJsonContext.Default.CbtMap);
}
