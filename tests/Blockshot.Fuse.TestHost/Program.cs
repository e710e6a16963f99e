using System.Globalization;
using Blockshot.Core;
using Blockshot.Drivers;
using Blockshot.Fuse;

// Usage: Blockshot.Fuse.TestHost MOUNTPOINT SIZE_MIB [--loop | --export-loop] [--node memory|null] [--async] [--readers N] [--buffered-loop]
// Serves a node on MOUNTPOINT, prints "READY <loop device or ->", and serves until stdin closes.
//   --loop         attach a loop device without auto-clear, as losetup does, so it outlives this
//                  process (the stale-mount tests kill this process with SIGKILL);
//   --export-loop  let the export attach its own loop device (for benchmarks with fio).
if (args.Length < 2)
{
    Console.Error.WriteLine("usage: Blockshot.Fuse.TestHost MOUNTPOINT SIZE_MIB [--loop | --export-loop] [--node memory|null] [--readers N] [--buffered-loop]");
    return 2;
}
var size = long.Parse(args[1], CultureInfo.InvariantCulture) << 20;
var kind = Option("--node") ?? "memory";
BlockNode node = kind == "null" ? new NullNode(size) : new MemoryNode(size);
if (args.Contains("--async"))
{
    node = new YieldingFilter(node);
}
if (node is MemoryNode)
{
    await node.WriteAsync(0, new byte[] { 0xB5, 0x0C, 0x5A, 0x07 }, IoFlags.None);
}
var options = new FuseExportOptions
{
    CreateMountpoint = false,
    Loop = args.Contains("--export-loop"),
    DirectIo = !args.Contains("--buffered-loop"),
};
if (Option("--readers") is { } readers)
{
    options = options with { Readers = int.Parse(readers, CultureInfo.InvariantCulture) };
}
await using var export = await FuseExport.StartAsync(node, args[0], options);
var loop = export.LoopDevicePath ?? "-";
if (args.Contains("--loop"))
{
    // Without auto-clear, as losetup does: the device stays bound when this process dies.
    var device = await Task.Run(() => LoopDevice.Attach(export.Mountpoint, autoClear: false));
    loop = device.Path;
}
Console.WriteLine($"READY {loop}");
Console.Out.Flush();
await Console.In.ReadLineAsync();
Console.Error.WriteLine(export.Counters);
return 0;

string? Option(string name)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}

/// <summary>Completes every read and write asynchronously (on the thread pool), to measure that path.</summary>
internal sealed class YieldingFilter(BlockNode next) : FilterNode(next)
{
    public override string Kind => "yield";

    public override async ValueTask ReadAsync(long offset, Memory<byte> buffer)
    {
        await Task.Yield();
        await Next.ReadAsync(offset, buffer);
    }

    public override async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, IoFlags flags)
    {
        await Task.Yield();
        await Next.WriteAsync(offset, data, flags);
    }
}
