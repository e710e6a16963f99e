using Blockshot.Filters.Fault;
using Blockshot.Filters.Throttle;

namespace Blockshot.Filters.Tests;

public class CatalogTests
{
    [Fact]
    public void Throttle_settings_parse_with_units_and_report_every_effective_value()
    {
        var template = Assert.IsType<ThrottleTemplate>(FilterCatalog.Create("throttle", new Dictionary<string, string> { ["bps"] = "50M", ["iops"] = "2000" }));
        Assert.Equal(50L << 20, template.State.Limits.BytesPerSecond);
        Assert.Equal(2000, template.State.Limits.IopsPerSecond);
        Assert.Equal(TimeSpan.FromMilliseconds(100), template.State.Limits.Burst);
        Assert.Equal(["bps", "burst-ms", "iops"], template.Settings.Keys.Order());
        Assert.Equal("50M", template.Settings["bps"]);
    }

    [Fact]
    public void Fault_settings_parse_kinds_errors_ranges_and_counts()
    {
        var template = Assert.IsType<FaultTemplate>(FilterCatalog.Create("fault", new Dictionary<string, string>
        {
            ["error"] = "enospc",
            ["ops"] = "write, zero",
            ["offset"] = "1M",
            ["length"] = "64K",
            ["probability"] = "0.5",
            ["delay-ms"] = "20",
            ["after"] = "3",
            ["count"] = "9",
        }));
        Assert.Equal(new FaultRule(FaultOps.Write | FaultOps.Zero, FaultError.NoSpace, 1 << 20, 64 << 10, 0.5, TimeSpan.FromMilliseconds(20), 3, 9),
            template.State.Rule);
    }

    [Theory]
    [InlineData("throttle", "bps", "fast", "bps: 'fast' is not a size")]
    [InlineData("throttle", "speed", "1", "unknown setting 'speed'")]
    [InlineData("throttle", "iops", "-4", "iops: '-4' is not a whole number")]
    [InlineData("fault", "error", "eperm", "error: 'eperm' is not one of")]
    [InlineData("fault", "ops", "write,open", "ops: 'open' is not one of")]
    [InlineData("fault", "probability", "2", "probability: '2' is not a number between 0 and 1")]
    public void Bad_settings_are_refused_with_the_key_named(string type, string key, string value, string expected)
    {
        var e = Assert.Throws<FilterSettingsException>(() => FilterCatalog.Create(type, new Dictionary<string, string> { [key] = value }));
        Assert.Contains(expected, e.Message);
        Assert.StartsWith(type + ":", e.Message);
        Assert.False(e.UnknownType);
    }

    [Fact]
    public void Unknown_types_are_refused_with_the_known_ones_listed()
    {
        var e = Assert.Throws<FilterSettingsException>(() => FilterCatalog.Create("cbw", new Dictionary<string, string>()));
        Assert.True(e.UnknownType);
        Assert.Contains("fault, throttle", e.Message);
    }

    [Fact]
    public async Task Nodes_built_from_one_template_share_its_state()
    {
        var template = FilterCatalog.Create("fault", new Dictionary<string, string> { ["ops"] = "read", ["count"] = "1" });
        await using var leaf = new MemoryNode(1 << 20);
        var first = template.Create(leaf);
        await Assert.ThrowsAsync<BlockException>(() => first.ReadAsync(0, new byte[1]).AsTask());
        var rebuilt = template.Create(leaf);
        await rebuilt.ReadAsync(0, new byte[1]);
        Assert.Equal(1, template.Counters["injected"]);
        Assert.Equal(2, template.Counters["matched"]);
        Assert.Same(leaf, rebuilt.Next);
    }

    [Theory]
    [InlineData("4096", 4096)]
    [InlineData("64K", 65536)]
    [InlineData("1.5M", 1572864)]
    [InlineData("2GiB", 2147483648)]
    [InlineData("100M/s", 104857600)]
    public void Quantities_parse_in_binary_units(string text, long expected)
    {
        Assert.True(Quantity.TryParseSize(text, out var value));
        Assert.Equal(expected, value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("-1")]
    [InlineData("1Q")]
    [InlineData("0.5")]
    public void Bad_quantities_are_refused(string text) => Assert.False(Quantity.TryParseSize(text, out _));
}
