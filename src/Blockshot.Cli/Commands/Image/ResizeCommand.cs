using System.CommandLine;

namespace Blockshot.Cli.Commands.Image;

/// <summary><c>blockshot image resize</c>: grow or shrink an image's virtual size.</summary>
internal static class ResizeCommand
{
    public static Command Create()
    {
        var file = ImageArgs.File();
        var size = new Argument<string>("SIZE") { Description = "New size, or +SIZE / -SIZE relative to the current one (write -- before a negative size)" };
        var format = ImageArgs.Format();
        var shrink = new Option<bool>("--shrink") { Description = "Allow making the image smaller (data past the new end is lost)" };
        var quiet = ImageArgs.Quiet();
        var command = new Command("resize", "Change an image's virtual size") { file, size, format, shrink, quiet };
        command.SetAction(ImageErrors.Guard(async (parse, _) =>
        {
            var path = parse.GetValue(file)!;
            var text = parse.GetValue(size)!;
            var relative = text.Length > 0 && (text[0] == '+' || text[0] == '-') ? text[0] : '\0';
            if (!SizeText.TryParse(relative == '\0' ? text : text[1..], out var bytes))
            {
                throw new CliException($"Invalid image size specified: '{text}'", ExitCodes.Usage);
            }
            var opened = await ImageOpener.OpenAsync(path, parse.GetValue(format), readOnly: false, direct: false, locking: true, openBacking: false).ConfigureAwait(false);
            await using (var node = opened.Node)
            {
                var target = relative switch
                {
                    '+' => node.Size + bytes,
                    '-' => node.Size - bytes,
                    _ => bytes,
                };
                if (target < 0)
                {
                    throw new CliException("New image size must be positive.", ExitCodes.Usage);
                }
                if (target < node.Size && !parse.GetValue(shrink))
                {
                    throw new CliException("Use the --shrink option to perform a shrink operation.", ExitCodes.Failure);
                }
                if (opened.Format == "qcow2")
                {
                    target = Core.Align.Up(target, 512);
                }
                if (node is Qcow2.Qcow2Node q && target < node.Size)
                {
                    await q.ShrinkAsync(target).ConfigureAwait(false);
                }
                else if (target != node.Size)
                {
                    await node.ResizeAsync(target).ConfigureAwait(false);
                }
            }
            if (!parse.GetValue(quiet))
            {
                Console.WriteLine("Image resized.");
            }
            return ExitCodes.Success;
        }));
        return command;
    }
}
