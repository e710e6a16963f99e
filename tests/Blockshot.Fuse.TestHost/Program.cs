using System.Globalization;
using System.Runtime.Versioning;
using Blockshot.Core;
using Blockshot.Drivers;
using Blockshot.Fuse;

[assembly: SupportedOSPlatform("linux")]

// Usage: Blockshot.Fuse.TestHost MOUNTPOINT SIZE_MIB [--loop]
// Serves a memory node on MOUNTPOINT (with a loop device that outlives this process when --loop is
// given), prints "READY <loop device or ->", and serves until stdin closes. Tests kill it with SIGKILL
// to leave a stale mount behind.
if (args.Length < 2)
{
    Console.Error.WriteLine("usage: Blockshot.Fuse.TestHost MOUNTPOINT SIZE_MIB [--loop]");
    return 2;
}
var size = long.Parse(args[1], CultureInfo.InvariantCulture) << 20;
var node = new MemoryNode(size);
await node.WriteAsync(0, new byte[] { 0xB5, 0x0C, 0x5A, 0x07 }, IoFlags.None);
await using var export = await FuseExport.StartAsync(node, args[0], new FuseExportOptions { CreateMountpoint = false });
string loop = "-";
if (args.Contains("--loop"))
{
    // Without auto-clear, as losetup does: the device stays bound when this process dies.
    var device = await Task.Run(() => LoopDevice.Attach(export.Mountpoint, autoClear: false));
    loop = device.Path;
}
Console.WriteLine($"READY {loop}");
Console.Out.Flush();
await Console.In.ReadLineAsync();
return 0;
