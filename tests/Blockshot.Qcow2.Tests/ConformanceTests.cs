using Blockshot.Core;

namespace Blockshot.Qcow2.Tests;

/// <summary>
/// The node conformance suite on images of several geometries. After every test the image is closed
/// and the peer tool's check must find no errors and no leaks.
/// </summary>
public abstract class Qcow2ConformanceBase : BlockNodeConformance
{
    private readonly TempDir _dir = new("qcow2-conf");
    private readonly List<string> _images = [];

    protected override bool TrimReadsZero => false;

    protected abstract string Options { get; }

    protected virtual bool CreateWithPeer => false;

    protected override async ValueTask<BlockNode> CreateNodeAsync(long size)
    {
        var path = _dir.File($"img{_images.Count}.qcow2");
        _images.Add(path);
        var options = Options;
        if (options.Contains("data_file", StringComparison.Ordinal))
        {
            options = options.Replace("data_file", $"data_file={_dir.File($"data{_images.Count}.bin")}", StringComparison.Ordinal);
        }
        if (CreateWithPeer)
        {
            Qemu.Img("create", "-f", "qcow2", "-o", options.Length == 0 ? "compat=1.1" : options, path, size.ToString());
        }
        else
        {
            await Qcow2Image.CreateAsync(path, size, Parse(options));
        }
        return await Qcow2Node.OpenAsync(path);
    }

    private static Qcow2CreateOptions Parse(string options)
    {
        var rest = new List<string>();
        string? dataFile = null;
        foreach (var kv in options.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            if (kv.StartsWith("data_file=", StringComparison.Ordinal))
            {
                dataFile = kv["data_file=".Length..];
            }
            else
            {
                rest.Add(kv);
            }
        }
        return CreateTests.Parse(string.Join(',', rest)) with { DataFile = dataFile };
    }

    protected override ValueTask CleanupAsync()
    {
        try
        {
            if (Tools.Find("qemu-img") is not null)
            {
                foreach (var image in _images)
                {
                    var (rc, _, text) = Qemu.Check(image);
                    Assert.True(rc == 0, $"qemu-img check {Path.GetFileName(image)} ({Options}) exited {rc}: {text}");
                }
            }
        }
        finally
        {
            _dir.Dispose();
        }
        return default;
    }
}

public class Qcow2DefaultConformance : Qcow2ConformanceBase
{
    protected override string Options => "";
}

public class Qcow2SmallClusterConformance : Qcow2ConformanceBase
{
    protected override string Options => "cluster_size=512";
}

public class Qcow2HugeClusterConformance : Qcow2ConformanceBase
{
    protected override string Options => "cluster_size=2M";
}

public class Qcow2V2Conformance : Qcow2ConformanceBase
{
    protected override string Options => "compat=0.10,cluster_size=4k";
}

public class Qcow2ExtendedL2Conformance : Qcow2ConformanceBase
{
    protected override string Options => "extended_l2=on,cluster_size=64k";
}

public class Qcow2NarrowRefcountConformance : Qcow2ConformanceBase
{
    protected override string Options => "refcount_bits=1,cluster_size=4k";
}

public class Qcow2LazyRefcountConformance : Qcow2ConformanceBase
{
    protected override string Options => "lazy_refcounts=on,refcount_bits=64";
}

public class Qcow2DataFileConformance : Qcow2ConformanceBase
{
    protected override string Options => "data_file";
}

public class Qcow2PeerCreatedConformance : Qcow2ConformanceBase
{
    protected override string Options => "cluster_size=16k";

    protected override bool CreateWithPeer => true;
}
