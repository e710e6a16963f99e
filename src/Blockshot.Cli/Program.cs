using System.CommandLine;
using Blockshot.Cli.Client;
using Blockshot.Cli.Commands;

namespace Blockshot.Cli;

/// <summary>Entry point of the <c>blockshot</c> command.</summary>
internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var root = new RootCommand("Blockshot: block-device snapshots, change tracking and backups, served over NBD.");
        root.Subcommands.Add(ServeCommand.Create());
        root.Subcommands.Add(DemoCommand.Create());
        root.Subcommands.Add(Commands.Image.ImageCommand.Create());
        root.Subcommands.Add(ClientOptions.AddControlTo(DaemonCommand.Create()));
        foreach (var client in new[] { DeviceCommands.Create(), ExportCommands.Create(), FilterCommands.Create(), JobCommands.Create(), MirrorCommand.Create(), EventsCommand.Create(), SnapshotCommands.Create(), CbtCommands.Create() })
        {
            root.Subcommands.Add(ClientOptions.AddToClient(client));
        }
        ClientOptions.AddTo(root);
        return await CommandRunner.RunAsync(root, args).ConfigureAwait(false);
    }
}
