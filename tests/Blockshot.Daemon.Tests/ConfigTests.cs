using Blockshot.Daemon.Config;

namespace Blockshot.Daemon.Tests;

public class ConfigTests
{
    private static ConfigException Fails(string json) =>
        Assert.Throws<ConfigException>(() => ConfigLoader.Parse(json, "test.json", "/srv"));

    [Fact]
    public void A_full_configuration_parses_with_paths_resolved_against_its_directory()
    {
        var config = ConfigLoader.Parse("""
            // comments are allowed
            {
              "control": "/run/x/control.sock",
              "nbd": { "port": 10810, "bind": "0.0.0.0" },
              "devices": [
                { "name": "d0", "file": "images/d0.raw", "read-only": true,
                  "filters": [ { "type": "throttle", "settings": { "bps": "10M", "iops": 500 } } ] },
                { "name": "d1", "file": "/dev/sdz", "format": "raw", "direct": true, "locking": false },
              ],
              "exports": [ { "device": "d0" }, { "device": "d1", "name": "disk1", "read-only": true, "description": "second" },
                           { "device": "d1", "name": "file1", "type": "fuse", "path": "mnt/d1.img", "loop": true } ]
            }
            """, "test.json", "/srv");
        Assert.Equal("/run/x/control.sock", config.Control);
        Assert.Equal(new NbdListenConfig(null, 10810, "0.0.0.0"), config.Nbd);
        Assert.Equal("/srv/images/d0.raw", config.Devices[0].File);
        Assert.True(config.Devices[0].ReadOnly);
        Assert.Equal("500", config.Devices[0].Filters[0].Settings["iops"]);
        Assert.False(config.Devices[1].Locking);
        Assert.Equal("disk1", config.Exports[1].Name);
        Assert.Equal("nbd", config.Exports[0].Type);
        Assert.Equal("$.devices[1]", config.Devices[1].Where);
        Assert.Equal(("fuse", "/srv/mnt/d1.img", true), (config.Exports[2].Type, config.Exports[2].Path, config.Exports[2].Loop));
        Assert.Null(config.Exports[0].Path);
    }

    [Fact]
    public void Every_error_is_reported_with_its_path()
    {
        var e = Fails("""
            {
              "devices": [
                { "name": "d0", "file": "a.raw", "format": "vmdk", "filters": [ { "type": "throttle", "settings": { "bps": "lots" } } ] },
                { "name": "d0", "file": "b.raw", "colour": "red" },
                { "file": 5 },
                { "name": "d3", "file": "c.raw", "filters": [ { "type": "cbw" } ] }
              ],
              "exports": [ { "device": "nope" }, { "device": "d0", "type": "iscsi" }, { "device": "d0", "type": "fuse", "name": "f" },
                           { "device": "d3", "loop": true } ],
              "nbd": { "socket": "/x", "port": 70000 },
              "extra": 1
            }
            """);
        string[] expected =
        [
            "$.devices[0].format: 'vmdk' is not raw or qcow2",
            "$.devices[0].filters[0].settings: throttle: bps: 'lots' is not a size",
            "$.devices[1].colour: unknown key",
            "$.devices[1].name: a device named 'd0' is defined twice",
            "$.devices[2].name: required",
            "$.devices[2].file: must be a non-empty string",
            "$.devices[3].filters[0].type: unknown filter type 'cbw'",
            "$.exports[0].device: no device named 'nope' is defined",
            "$.exports[1].type: 'iscsi' is not nbd or fuse",
            "$.exports[2].path: required for a fuse export",
            "$.exports[3]: path and loop apply to fuse exports only",
            "$.nbd.port: must be a whole number from 0 to 65535",
            "$.extra: unknown key",
        ];
        foreach (var text in expected)
        {
            Assert.Contains(e.Errors, error => error.StartsWith(text, StringComparison.Ordinal));
        }
        Assert.Contains("test.json", e.Message);
    }

    [Theory]
    [InlineData("{", "$: not valid JSON")]
    [InlineData("[]", "$: must be an object")]
    [InlineData("{\"devices\": {}}", "$.devices: must be an array")]
    [InlineData("{\"devices\": [ {\"name\": \"bad name\", \"file\": \"x\"} ]}", "$.devices[0].name: device name 'bad name' is not valid")]
    [InlineData("{\"nbd\": {\"socket\": \"/s\", \"port\": 1}}", "$.nbd: give either socket, or port")]
    public void Shapes_are_checked(string json, string expected) =>
        Assert.Contains(Fails(json).Errors, e => e.StartsWith(expected, StringComparison.Ordinal));

    [Fact]
    public async Task Applying_a_configuration_whose_image_is_missing_names_the_place_and_starts_nothing()
    {
        using var dir = new TempDir();
        var config = ConfigLoader.Parse("""{ "devices": [ { "name": "gone", "file": "gone.raw" } ] }""", "c.json", dir.Path);
        var daemon = new BlockshotDaemon(new DaemonOptions { ControlPath = dir.File("control.sock") }, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
        await using (daemon)
        {
            var e = await Assert.ThrowsAsync<ConfigException>(() => daemon.StartAsync(config, "c.json"));
            Assert.StartsWith("$.devices[0].file:", e.Errors[0]);
            Assert.Equal(ControlErrorCodes.NotFound, e.ControlCode);
            Assert.False(File.Exists(dir.File("control.sock")));
        }
    }

    [Fact]
    public async Task A_configuration_brings_up_devices_filters_and_exports()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("d.raw"), new byte[1 << 20]);
        var config = ConfigLoader.Parse("""
            { "devices": [ { "name": "d", "file": "d.raw", "filters": [ { "type": "fault", "name": "f1", "settings": { "probability": 0 } },
                                                                        { "type": "throttle" } ] } ],
              "exports": [ { "device": "d", "name": "exp" } ] }
            """, "c.json", dir.Path);
        await using var daemon = new BlockshotDaemon(new DaemonOptions { ControlPath = dir.File("control.sock") }, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
        await daemon.StartAsync(config, "c.json");
        var device = Assert.Single(await daemon.Registry.ListDevicesAsync());
        Assert.Equal(["f1", "throttle"], device.Filters.Select(f => f.Name));
        Assert.Equal("exp", Assert.Single(await daemon.Registry.ListExportsAsync()).Name);
    }

    [Fact]
    public void The_sample_configuration_in_packaging_is_valid()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Blockshot.slnx")))
        {
            dir = dir.Parent;
        }
        Assert.NotNull(dir);
        var config = ConfigLoader.Load(Path.Combine(dir.FullName, "packaging", "daemon.json"));
        Assert.Equal(2, config.Devices.Count);
        Assert.Equal("/run/blockshot/nbd.sock", config.Nbd!.Socket);
        Assert.Equal("throttle", config.Devices[0].Filters[0].Type);
        var unit = File.ReadAllText(Path.Combine(dir.FullName, "packaging", "blockshot.service"));
        Assert.Contains("ExecStart=/usr/local/bin/blockshot daemon --config /etc/blockshot/daemon.json", unit);
        Assert.Contains("Type=notify", unit);
    }
}
