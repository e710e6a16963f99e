using System.Text.Json.Nodes;
using static Blockshot.Daemon.Control.ParamSpec;

namespace Blockshot.Daemon.Control.Methods;

/// <summary><c>cbt.*</c>: changed-block tracking of devices.</summary>
internal static class CbtMethods
{
    private static readonly ParamSpec Device = Req("device", ParamType.String, "device name");

    public static IEnumerable<RpcMethod> Create(DaemonServices s)
    {
        var r = s.Registry;
        yield return new("cbt.attach", "Attach change tracking to a device while clients stay connected (before its first snapshot)",
            [
                Device,
                Opt("block-size", ParamType.Integer, "bytes per tracking block, a power of two ≥ 4096", "65536"),
                Opt("sidecar", ParamType.String, "the map's file, or none for memory only", "FILE.cbt beside a regular file"),
                Opt("store", ParamType.String, "also keep the generation's changes in the image: qcow2-bitmap[:NAME]", "sidecar"),
            ],
            "cbt-info",
            async (p, _, _) => Json.Of(await r.AttachTrackerAsync(p.String("device"), BlockSize(p), p.OptionalString("sidecar"), p.OptionalString("store")).ConfigureAwait(false)));

        yield return new("cbt.detach", "Detach change tracking (the sidecar records a clean stop)", [Device], "{detached: device}",
            async (p, _, _) =>
            {
                await r.DetachTrackerAsync(p.String("device")).ConfigureAwait(false);
                return new JsonObject { ["detached"] = p.String("device") };
            });

        yield return new("cbt.info", "Generation, block size, current period and changed blocks of a tracked device", [Device], "cbt-info",
            async (p, _, _) => Json.Of(await r.CbtInfoAsync(p.String("device")).ConfigureAwait(false)));

        yield return new("cbt.map", "Byte ranges of the blocks changed after period SINCE (incremental: the last backup's; differential: the full's)",
            [Device, Req("since", ParamType.Integer, "period number, 0 for every change of the generation")],
            "cbt-map",
            async (p, _, _) => Json.Of(await r.CbtMapAsync(p.String("device"), (int)Math.Clamp(p.Integer("since", 0), -1, 256)).ConfigureAwait(false)));

        yield return new("cbt.mark-dirty", "Mark a range changed without writing it",
            [Device, Req("offset", ParamType.Integer, "start, in bytes"), Req("length", ParamType.Integer, "length, in bytes")],
            "{marked: {offset, length}}",
            async (p, _, _) =>
            {
                await r.MarkDirtyAsync(p.String("device"), p.Integer("offset", 0), p.Integer("length", 0)).ConfigureAwait(false);
                return new JsonObject { ["marked"] = new JsonObject { ["offset"] = p.Integer("offset", 0), ["length"] = p.Integer("length", 0) } };
            });

        yield return new("cbt.reset", "Start a new generation: the next backup must be full",
            [Device, Opt("reason", ParamType.String, "recorded with the generation", "reset by request")],
            "cbt-info",
            async (p, _, _) => Json.Of(await r.ResetTrackerAsync(p.String("device"), p.OptionalString("reason")).ConfigureAwait(false)));
    }

    /// <summary>The block-size parameter, range-checked to fit an int.</summary>
    public static int? BlockSize(RpcParams p) =>
        p.OptionalInteger("block-size") is { } b ? (int)Math.Clamp(b, 0, 1 << 30) : null;
}
