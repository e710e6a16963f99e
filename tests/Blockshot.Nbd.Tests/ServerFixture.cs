using Blockshot.Core;
using Blockshot.Core.Buffers;
using Blockshot.Drivers;

namespace Blockshot.Nbd.Tests;

/// <summary>An in-process server on a Unix socket in a temp dir, with exports over memory nodes.</summary>
public sealed class ServerFixture : IAsyncDisposable
{
    private readonly TempDir _dir = new("blockshot-nbd");

    public ServerFixture(NbdServerOptions? options = null)
    {
        Pool = new BufferPool();
        var o = options ?? new NbdServerOptions();
        Server = new NbdServer(new NbdServerOptions
        {
            Buffers = Pool,
            HandshakeTimeout = o.HandshakeTimeout,
            MaxOptions = o.MaxOptions,
            MaxInFlightPerConnection = o.MaxInFlightPerConnection,
            MaxConnections = o.MaxConnections,
            DefaultExport = o.DefaultExport,
            SendBufferBytes = o.SendBufferBytes,
            ZeroCopyReadMinLength = o.ZeroCopyReadMinLength,
            ZeroCopyMinConnections = o.ZeroCopyMinConnections,
        });
        SocketPath = _dir.File("nbd.sock");
        Server.ListenUnix(SocketPath);
    }

    public NbdServer Server { get; }

    public BufferPool Pool { get; }

    public string SocketPath { get; }

    public string Dir => _dir.Path;

    public string Uri(string export) => $"nbd+unix:///{export}?socket={SocketPath}";

    public MemoryNode AddMemoryExport(string name, long size, bool readOnly = false, string? description = null)
    {
        var node = new MemoryNode(size);
        Server.AddExport(new NbdExport(name, new Slot(node, name: name), readOnly, description));
        return node;
    }

    public void AddExport(string name, BlockNode node, bool readOnly = false) =>
        Server.AddExport(new NbdExport(name, new Slot(node, name: name), readOnly));

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        // Every buffer the server rented must be back: a leak here is a bug.
        Assert.Equal(0, Pool.Outstanding);
        Pool.Dispose();
        _dir.Dispose();
    }
}
