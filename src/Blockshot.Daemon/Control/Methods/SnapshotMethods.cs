using System.Text.Json.Nodes;
using Blockshot.Daemon.SnapshotSets;
using Blockshot.Snapshots;
using Blockshot.Snapshots.Storage;
using static Blockshot.Daemon.Control.ParamSpec;

namespace Blockshot.Daemon.Control.Methods;

/// <summary><c>snapshot.*</c>: snapshot sets taken, listed, exported and destroyed.</summary>
internal static class SnapshotMethods
{
    private static readonly ParamSpec Name = Req("name", ParamType.String, "snapshot (set) name");

    public static IEnumerable<RpcMethod> Create(DaemonServices s)
    {
        var r = s.Registry;
        yield return new("snapshot.create", "Take a snapshot of one or more devices at one instant (copy-before-write; the devices keep running)",
            [
                Req("devices", ParamType.StringArray, "the devices of the set"),
                Opt("name", ParamType.String, "the set's name", "snap-TIMESTAMP"),
                Opt("storage", ParamType.String, "memory, file:PATH, dir:PATH, multi:P1,P2,... or tiered:SIZE,INNER (required for a device without snapshots)"),
                Opt("chunk-size", ParamType.Integer, "bytes per chunk, a power of two", "65536"),
                Opt("initial", ParamType.Integer, "bytes of storage to start with", "67108864"),
                Opt("grow-step", ParamType.Integer, "bytes the storage grows by", "67108864"),
                Opt("limit", ParamType.Integer, "the most the storage may hold, in bytes", "1 GiB for memory, else the medium"),
                Opt("low-space", ParamType.Number, "fraction of the limit left free at which low-space fires", "0.1"),
                Opt("on-overflow", ParamType.String, "break-snapshot, fail-write or wait", "break-snapshot"),
                Opt("wait-timeout-ms", ParamType.Integer, "with wait: how long a writer waits for space", "30000"),
                Opt("after-wait", ParamType.String, "with wait: break-snapshot or fail-write once the wait runs out", "break-snapshot"),
                Opt("writable", ParamType.Boolean, "the images accept writes (into the storage, never the device)", "false"),
                Opt("persistent", ParamType.Boolean, "survive daemon restarts (file storage)", "false"),
                Opt("freeze-hook", ParamType.String, "shell command run before the take (e.g. fsfreeze -f /mnt)"),
                Opt("thaw-hook", ParamType.String, "shell command run after it (always, once the freeze ran)"),
                Opt("hook-timeout-ms", ParamType.Integer, "how long each hook may take", "30000"),
            ],
            "snapshot-info",
            async (p, _, _) => Json.Of(await r.CreateSnapshotAsync(CreateRequest(p)).ConfigureAwait(false)));

        yield return new("snapshot.list", "List snapshot sets", [], "array of snapshot-info",
            async (_, _, _) => Json.Of(await r.ListSnapshotsAsync().ConfigureAwait(false)));

        yield return new("snapshot.info", "Describe a snapshot set", [Name], "snapshot-info",
            async (p, _, _) => Json.Of(await r.GetSnapshotAsync(p.String("name")).ConfigureAwait(false)));

        yield return new("snapshot.destroy", "Destroy a set's snapshots (or one device's); refused while exported unless forced",
            [Name, Opt("device", ParamType.String, "only this device's snapshot", "every device"), Opt("force", ParamType.Boolean, "remove its exports first", "false")],
            "{destroyed: name}",
            async (p, _, _) =>
            {
                await r.DestroySnapshotAsync(p.String("name"), p.OptionalString("device"), p.Boolean("force")).ConfigureAwait(false);
                return new JsonObject { ["destroyed"] = p.String("name") };
            });

        yield return new("snapshot.export",
            "Export one device's snapshot over NBD (contexts: base:allocation, blockshot:copy-order, qemu:dirty-bitmap:NAME when tracked) or FUSE (a file, optionally with a loop device)",
            [
                Name,
                Req("device", ParamType.String, "the device whose snapshot to export"),
                Opt("type", ParamType.String, "nbd or fuse", "nbd"),
                Opt("export-name", ParamType.String, "export name", "DEVICE.NAME"),
                Opt("read-only", ParamType.Boolean, "refuse writes and trims (without it, NBD trims of a read-only snapshot discard chunks: read-once; a FUSE file of a read-only snapshot is read-only)", "false"),
                Opt("bitmap", ParamType.String, "nbd: the dirty-bitmap name offered", DirtyBitmapView.DefaultName),
                Opt("description", ParamType.String, "shown to clients (NBD)"),
                Opt("path", ParamType.String, "fuse: the regular file to mount the image on, an absolute path (created if missing)"),
                Opt("loop", ParamType.Boolean, "fuse: attach a loop device to the file", "false"),
            ],
            "export-info",
            async (p, _, _) => Json.Of(await r.ExportSnapshotAsync(new SnapshotExportRequest(p.String("name"), p.String("device"),
                p.OptionalString("type") ?? "nbd", p.OptionalString("export-name"), p.Boolean("read-only"), p.OptionalString("bitmap"),
                p.OptionalString("description"), p.OptionalString("path"), p.Boolean("loop"))).ConfigureAwait(false)));
    }

    private static SnapshotCreateRequest CreateRequest(RpcParams p)
    {
        var sizing = new DiffStoreOptions();
        sizing = sizing with
        {
            InitialBytes = Positive(p, "initial", sizing.InitialBytes),
            GrowStepBytes = Positive(p, "grow-step", sizing.GrowStepBytes),
            LimitBytes = Positive(p, "limit", sizing.LimitBytes),
        };
        if (p.Has("low-space"))
        {
            var fraction = p.Number("low-space");
            if (fraction is <= 0 or >= 1)
            {
                throw RpcParams.Invalid("'low-space' must be a fraction between 0 and 1");
            }
            sizing = sizing with { LowSpaceFraction = fraction };
        }
        int? chunk = null;
        if (p.OptionalInteger("chunk-size") is { } c)
        {
            if (c < 4096 || c > (16 << 20) || (c & (c - 1)) != 0)
            {
                throw RpcParams.Invalid($"chunk size {c} must be a power of two from 4096 to 16 MiB");
            }
            chunk = (int)c;
        }
        var options = new SnapshotOptions
        {
            OnOverflow = Policy(p.OptionalString("on-overflow") ?? "break-snapshot", allowWait: true),
            WaitTimeout = p.Milliseconds("wait-timeout-ms", TimeSpan.FromSeconds(30)),
            AfterWait = Policy(p.OptionalString("after-wait") ?? "break-snapshot", allowWait: false),
            Writable = p.Boolean("writable"),
        };
        if ((p.Has("freeze-hook") || p.Has("thaw-hook")) && !(p.Has("freeze-hook") && p.Has("thaw-hook")))
        {
            throw RpcParams.Invalid("give freeze-hook and thaw-hook together (a freeze needs its thaw)");
        }
        return new SnapshotCreateRequest(
            p.OptionalString("name") ?? "snap-" + DateTime.UtcNow.ToString("yyyyMMdd-HHmmss-fff", System.Globalization.CultureInfo.InvariantCulture),
            p.Strings("devices"),
            p.OptionalString("storage") is { } storage ? StorageSpec.Parse(storage) : null,
            chunk,
            sizing,
            options,
            p.Boolean("persistent"),
            p.OptionalString("freeze-hook"),
            p.OptionalString("thaw-hook"),
            p.Milliseconds("hook-timeout-ms", TimeSpan.FromSeconds(30)));
    }

    private static long Positive(RpcParams p, string name, long fallback)
    {
        var value = p.Integer(name, fallback);
        if (value <= 0)
        {
            throw RpcParams.Invalid($"'{name}' must be a positive number of bytes");
        }
        return value;
    }

    private static OverflowPolicy Policy(string text, bool allowWait) => text switch
    {
        "break-snapshot" => OverflowPolicy.BreakSnapshot,
        "fail-write" => OverflowPolicy.FailWrite,
        "wait" when allowWait => OverflowPolicy.Wait,
        _ => throw RpcParams.Invalid($"'{text}' is not {(allowWait ? "break-snapshot, fail-write or wait" : "break-snapshot or fail-write")}"),
    };
}
