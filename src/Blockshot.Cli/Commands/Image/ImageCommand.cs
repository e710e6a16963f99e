using System.CommandLine;

namespace Blockshot.Cli.Commands.Image;

/// <summary>
/// <c>blockshot image</c>: offline image tools shaped like qemu-img (create, info, check, map, convert,
/// compare, commit, rebase, resize, snapshot, bitmap, amend), for raw and qcow2 images.
/// </summary>
internal static class ImageCommand
{
    public static Command Create() => new("image", "Create, inspect, check, convert and change disk images (raw, qcow2); shaped like qemu-img")
    {
        CreateCommand.Create(),
        InfoCommand.Create(),
        CheckCommand.Create(),
        MapCommand.Create(),
        ConvertCommand.Create(),
        CompareCommand.Create(),
        CommitCommand.Create(),
        RebaseCommand.Create(),
        ResizeCommand.Create(),
        SnapshotCommand.Create(),
        BitmapCommand.Create(),
        AmendCommand.Create(),
    };
}
