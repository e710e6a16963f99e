using System.Text.Json.Nodes;
using static Blockshot.Daemon.Control.ParamSpec;

namespace Blockshot.Daemon.Control.Methods;

/// <summary><c>device.*</c>: the registry and live slot operations.</summary>
internal static class DeviceMethods
{
    private static readonly ParamSpec Name = Req("name", ParamType.String, "device name");
    private static readonly ParamSpec Timeout = Opt("timeout-ms", ParamType.Integer, "how long requests in flight may take to drain", "10000");

    public static IEnumerable<RpcMethod> Create(DaemonServices s)
    {
        var r = s.Registry;
        yield return new("device.add", "Add a device from a raw image file or a host block device",
            [
                Name,
                Req("file", ParamType.String, "image file or host block device (absolute, or relative to the daemon's directory)"),
                Opt("format", ParamType.String, "raw or qcow2", "detected"),
                Opt("read-only", ParamType.Boolean, "open read-only; writes fail with EPERM", "false"),
                Opt("direct", ParamType.Boolean, "bypass the host page cache (O_DIRECT)", "false"),
                Opt("locking", ParamType.Boolean, "take the image locks qemu also takes", "true"),
                Opt("track", ParamType.Boolean, "attach change tracking", "false"),
                Opt("track-block-size", ParamType.Integer, "bytes per tracking block", "65536"),
                Opt("track-sidecar", ParamType.String, "the tracking map's file, or none", "FILE.cbt beside a regular file"),
                Opt("track-store", ParamType.String, "also keep the generation's changes in the image: qcow2-bitmap[:NAME]", "sidecar"),
            ],
            "device-info",
            async (p, _, _) => Json.Of(await r.AddDeviceAsync(p.String("name"), p.String("file"), p.OptionalString("format"),
                p.Boolean("read-only"), p.Boolean("direct"), p.Boolean("locking", true), null,
                p.Boolean("track") ? new ChangeTracking.TrackRequest(
                    p.OptionalInteger("track-block-size") is { } b ? (int)Math.Clamp(b, 0, 1 << 30) : null, p.OptionalString("track-sidecar"), p.OptionalString("track-store")) : null).ConfigureAwait(false)));

        yield return new("device.remove", "Remove a device; refused while it is exported or used by a job unless forced",
            [Name, Opt("force", ParamType.Boolean, "remove its exports and cancel its jobs first", "false")],
            "{removed: name}",
            async (p, _, _) =>
            {
                await r.RemoveDeviceAsync(p.String("name"), p.Boolean("force")).ConfigureAwait(false);
                return new JsonObject { ["removed"] = p.String("name") };
            });

        yield return new("device.list", "List devices with size, format, filters and exports", [], "array of device-info",
            async (_, _, _) => Json.Of(await r.ListDevicesAsync().ConfigureAwait(false)));

        yield return new("device.get", "Describe one device", [Name], "device-info",
            async (p, _, _) => Json.Of((await r.GetDeviceAsync(p.String("name")).ConfigureAwait(false)).ToInfo()));

        yield return new("device.suspend", "Drain requests in flight and hold new ones until device.resume (or until hold-ms runs out)",
            [Name, Timeout, Opt("hold-ms", ParamType.Integer, "resume by itself after this long", "no limit")],
            "device-info",
            async (p, _, _) =>
            {
                var hold = p.Has("hold-ms") ? p.Milliseconds("hold-ms", TimeSpan.Zero) : (TimeSpan?)null;
                await r.SuspendAsync(p.String("name"), p.Milliseconds("timeout-ms", Registry.DefaultTimeout), hold).ConfigureAwait(false);
                return Json.Of((await r.GetDeviceAsync(p.String("name")).ConfigureAwait(false)).ToInfo());
            });

        yield return new("device.resume", "Release a suspended device: held requests run", [Name], "device-info",
            async (p, _, _) =>
            {
                await r.ResumeAsync(p.String("name")).ConfigureAwait(false);
                return Json.Of((await r.GetDeviceAsync(p.String("name")).ConfigureAwait(false)).ToInfo());
            });

        yield return new("device.reload", "Reopen a device's image (or open another of the same size) and swap it in under its filters; clients stay connected",
            [
                Name,
                Opt("file", ParamType.String, "the image to open instead (same size)", "the current image"),
                Opt("format", ParamType.String, "raw or qcow2", "the current format, or detected for a new file"),
                Timeout,
            ],
            "device-info",
            async (p, _, _) => Json.Of(await r.ReloadAsync(p.String("name"), p.OptionalString("file"), p.OptionalString("format"),
                p.Milliseconds("timeout-ms", Registry.DefaultTimeout)).ConfigureAwait(false)));

        yield return new("device.resize", "Grow or shrink a device's image (raw file or qcow2) with its requests drained; tracking starts a new generation",
            [Name, Req("size", ParamType.Integer, "the new size in bytes"), Timeout],
            "device-info",
            async (p, _, _) => Json.Of(await r.ResizeAsync(p.String("name"), p.Integer("size", 0), p.Milliseconds("timeout-ms", Registry.DefaultTimeout)).ConfigureAwait(false)));
    }
}
