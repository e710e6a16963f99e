using Blockshot.Core.Buffers;

namespace Blockshot.Nbd;

/// <summary>Settings of an <see cref="NbdServer"/>.</summary>
public sealed class NbdServerOptions
{
    /// <summary>How long a client may take to finish the handshake.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Most options a client may send before it must choose an export.</summary>
    public int MaxOptions { get; init; } = 64;

    /// <summary>Most requests one connection may have in flight; further ones wait to be read.</summary>
    public int MaxInFlightPerConnection { get; init; } = 64;

    /// <summary>
    /// Most read and write payload bytes one connection may have in flight; a request that would go
    /// over waits to be read until earlier ones are answered (one request alone is always admitted).
    /// Bounds the server's memory under clients that queue many large requests.
    /// </summary>
    public long MaxBytesInFlightPerConnection { get; init; } = 8 << 20;

    /// <summary>Most simultaneous connections; more wait in the listen backlog.</summary>
    public int MaxConnections { get; init; } = 128;

    /// <summary>The export served to clients that ask for the empty name; defaults to the only export.</summary>
    public string? DefaultExport { get; init; }

    /// <summary>
    /// Whether to advertise that several connections may share an export (only when the node allows
    /// it too). Servers limited to one connection turn it off, so clients do not try to open more.
    /// </summary>
    public bool AdvertiseMultiConn { get; init; } = true;

    /// <summary>Where request and reply buffers come from.</summary>
    public BufferPool Buffers { get; init; } = BufferPool.Shared;

    /// <summary>
    /// The socket send buffer asked for on every accepted connection (SO_SNDBUF; the kernel caps it at
    /// net.core.wmem_max and doubles it for its bookkeeping); 0 keeps the kernel's default. Unix sockets
    /// default to about 208 KiB, less than one 256 KiB read reply, so without it every large reply is
    /// sent in pieces with a wait for the client in between.
    /// </summary>
    public int SendBufferBytes { get; init; } = 2 << 20;

    /// <summary>The read length from which zero-copy sends pay.</summary>
    public const int ZeroCopyDefaultMinLength = 64 << 10;

    /// <summary>
    /// Reads at least this long whose data a file's page cache holds whole (a raw file or device opened
    /// buffered, with no filter above it) are sent from the cache with sendfile, with no copy through a
    /// buffer, while the export has <see cref="ZeroCopyMinConnections"/> connections; 0 copies every read.
    /// </summary>
    public int ZeroCopyReadMinLength { get; init; } = ZeroCopyDefaultMinLength;

    /// <summary>
    /// Zero-copy reads are sent only while at least this many connections are transmitting on the export
    /// (default 2); 1 sends every mappable read so. On one machine with the client it trades by client:
    /// nbdcopy reads a cached image 1.5 to 4 times as fast by reference, fio and qemu-img read it slower at
    /// every request size and depth measured. Nothing a connection shows the server tells them apart for
    /// certain; the connection count comes closest (nbdcopy opens four when the export offers multi-conn,
    /// fio and qemu-img one), so two fio jobs on one export get the slower mode.
    /// </summary>
    public int ZeroCopyMinConnections { get; init; } = 2;

    /// <summary>Reads at least this long without the DF flag are scanned for zero runs, sent as holes.</summary>
    public int HoleScanMinLength { get; init; } = 128 << 10;
}
