using Blockshot.Core;
using Blockshot.Core.Buffers;
using Blockshot.Core.Extents;
using Blockshot.Nbd.Protocol;

namespace Blockshot.Nbd.Internal;

/// <summary>
/// One request slot of a connection: a long-lived loop that waits for a request, runs it, hands its
/// reply to the sender and waits until the reply is on the wire. A connection keeps up to its
/// in-flight limit of lanes and reuses them, so a request allocates nothing.
/// </summary>
internal sealed class Lane
{
    /// <summary>Room for simple replies and error chunks with a short message.</summary>
    public const int SmallSize = 512;

    private readonly NbdConnection _connection;

    public Lane(NbdConnection connection)
    {
        _connection = connection;
    }

    /// <summary>Set (true) by the reader when a request is ready; false ends the loop.</summary>
    public ReusableSignal Work { get; } = new(runContinuationsAsynchronously: false);

    /// <summary>Set by the sender once the reply is written (false if the connection broke).</summary>
    public ReusableSignal Sent { get; } = new(runContinuationsAsynchronously: false);

    /// <summary>The request being served.</summary>
    public NbdRequest Request { get; set; }

    /// <summary>An error found by the reader's checks; the request is answered with it unrun.</summary>
    public uint PresetError { get; set; }

    /// <summary>A message to go with <see cref="PresetError"/>.</summary>
    public string? PresetMessage { get; set; }

    /// <summary>The write payload, or the reply body (read data, extents).</summary>
    public PooledBuffer? Buffer { get; set; }

    /// <summary>Read data to be sent straight from the page cache; valid while <see cref="HasFile"/>.</summary>
    public CachedFileRange File { get; private set; }

    /// <summary>True while the lane holds a <see cref="File"/> range (released when the request ends).</summary>
    public bool HasFile { get; private set; }

    /// <summary>Buffer for short replies.</summary>
    public byte[] Small { get; } = GC.AllocateUninitializedArray<byte>(SmallSize, pinned: true);

    /// <summary>Extent lists, one per selected metadata context.</summary>
    public List<ExtentList> Extents { get; } = [];

    /// <summary>The reply: slices of <see cref="Small"/> or <see cref="Buffer"/>, or the <see cref="File"/> range, sent in order.</summary>
    public ReplySegment[] Segments { get; private set; } = new ReplySegment[4];

    /// <summary>Payload bytes this lane's request holds against the connection's budget.</summary>
    public long ReservedBytes { get; set; }

    /// <summary>Number of used entries of <see cref="Segments"/>.</summary>
    public int SegmentCount { get; private set; }

    /// <summary>Forgets the previous reply.</summary>
    public void ClearReply() => SegmentCount = 0;

    /// <summary>Appends a slice of <see cref="Small"/> to the reply.</summary>
    public void AddSmall(int start, int length) => Add(new ReplySegment(ReplySource.Small, start, length));

    /// <summary>Appends a slice of <see cref="Buffer"/> to the reply.</summary>
    public void AddBuffer(int start, int length) => Add(new ReplySegment(ReplySource.Buffer, start, length));

    /// <summary>Takes <paramref name="range"/> (and its reference) and appends the whole of it to the reply.</summary>
    public void AddFile(CachedFileRange range)
    {
        File = range;
        HasFile = true;
        Add(new ReplySegment(ReplySource.File, 0, range.Length));
    }

    /// <summary>The bytes of a <see cref="ReplySource.Small"/> or <see cref="ReplySource.Buffer"/> segment.</summary>
    public ReadOnlyMemory<byte> Bytes(ReplySegment segment) => segment.Source == ReplySource.Buffer
        ? Buffer!.Memory.Slice(segment.Start, segment.Length)
        : Small.AsMemory(segment.Start, segment.Length);

    /// <summary>The extent list for context number <paramref name="index"/>.</summary>
    public ExtentList ExtentsFor(int index)
    {
        while (Extents.Count <= index)
        {
            Extents.Add(new ExtentList());
        }
        return Extents[index];
    }

    /// <summary>Runs requests until told to stop (one task for the lane's whole life).</summary>
    public async Task RunAsync()
    {
        while (await Work.WaitAsync())
        {
            try
            {
                await _connection.ServeAsync(this).ConfigureAwait(false);
            }
            finally
            {
                if (Buffer is { } buffer)
                {
                    Buffer = null;
                    ((IDisposable)buffer).Dispose();
                }
                if (HasFile)
                {
                    HasFile = false;
                    File.Release();
                    File = default;
                }
                PresetError = 0;
                PresetMessage = null;
                _connection.ReturnLane(this);
            }
        }
    }

    private void Add(ReplySegment segment)
    {
        if (SegmentCount == Segments.Length)
        {
            var grown = Segments;
            Array.Resize(ref grown, grown.Length * 2);
            Segments = grown;
        }
        Segments[SegmentCount++] = segment;
    }
}

/// <summary>A slice of a lane's reply.</summary>
/// <param name="Source">Where the bytes are.</param>
/// <param name="Start">First byte (0 for the file range, which is sent whole).</param>
/// <param name="Length">Byte count.</param>
internal readonly record struct ReplySegment(ReplySource Source, int Start, int Length);

/// <summary>Where a reply segment's bytes are.</summary>
internal enum ReplySource
{
    /// <summary>The lane's small buffer.</summary>
    Small,

    /// <summary>The lane's pooled buffer.</summary>
    Buffer,

    /// <summary>The lane's cached file range, sent with sendfile.</summary>
    File,
}
