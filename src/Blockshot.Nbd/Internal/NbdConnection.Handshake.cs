using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;
using Blockshot.Nbd.Protocol;

namespace Blockshot.Nbd.Internal;

/// <summary>The fixed newstyle handshake: option haggling until the client picks an export.</summary>
internal sealed partial class NbdConnection
{
    private const ushort ServerFlagFixedNewstyle = 1;
    private const ushort ServerFlagNoZeroes = 2;
    private const uint ClientFlagFixedNewstyle = 1;
    private const uint ClientFlagNoZeroes = 2;

    private bool _structured;
    private bool _noZeroes;
    private NbdTransmissionFlags _flags;

    // Metadata contexts selected by SET_META_CONTEXT, with the export they were selected for.
    private string? _metaExport;
    private readonly List<(uint Id, string Name)> _selected = [];

    /// <summary>The contexts in use during transmission, in the order replies carry them.</summary>
    private IReadOnlyList<(uint Id, string Name)> Selected => _selected;

    // The handshake's deadline: running, done (transmission began) or expired (the socket was shut).
    private const int HandshakeRunning = 0;
    private const int HandshakeDone = 1;
    private const int HandshakeExpired = 2;
    private int _handshakeState;

    /// <summary>
    /// Runs the handshake on the connection's thread; true when the client chose an export in time and
    /// transmission begins. At the deadline the socket is shut, which ends any receive or send it waits in.
    /// </summary>
    private bool Handshake()
    {
        using var deadline = new Timer(static state => ((NbdConnection)state!).ExpireHandshake(), this,
            _options.HandshakeTimeout, Timeout.InfiniteTimeSpan);
        bool chosen;
        string? failure = null;
        try
        {
            chosen = NegotiateOptions();
        }
        catch (Exception e) when (e is EndOfStreamException or SocketException or IOException or ObjectDisposedException)
        {
            chosen = false;
            failure = e.Message;
        }
        if (Interlocked.CompareExchange(ref _handshakeState, HandshakeDone, HandshakeRunning) == HandshakeExpired)
        {
            return Fail($"no export chosen within {_options.HandshakeTimeout.TotalSeconds:0} s");
        }
        return chosen || (failure is not null && Fail(failure));
    }

    private void ExpireHandshake()
    {
        if (Interlocked.CompareExchange(ref _handshakeState, HandshakeExpired, HandshakeRunning) == HandshakeRunning)
        {
            ShutdownQuietly(SocketShutdown.Both);
        }
    }

    /// <summary>Option haggling; true when the client chose an export.</summary>
    private bool NegotiateOptions()
    {
        var greeting = new byte[18];
        BinaryPrimitives.WriteUInt64BigEndian(greeting, NbdMagic.InitPassword);
        BinaryPrimitives.WriteUInt64BigEndian(greeting.AsSpan(8), NbdMagic.HaveOptions);
        BinaryPrimitives.WriteUInt16BigEndian(greeting.AsSpan(16), ServerFlagFixedNewstyle | ServerFlagNoZeroes);
        SendRaw(greeting);

        if (!_reader.Fill(4))
        {
            return false;
        }
        var clientFlags = BinaryPrimitives.ReadUInt32BigEndian(_reader.Peek(4));
        _reader.Consume(4);
        if ((clientFlags & ~(ClientFlagFixedNewstyle | ClientFlagNoZeroes)) != 0)
        {
            return Fail($"unknown client flags 0x{clientFlags:x}");
        }
        if ((clientFlags & ClientFlagFixedNewstyle) == 0)
        {
            return Fail("client does not speak fixed newstyle");
        }
        _noZeroes = (clientFlags & ClientFlagNoZeroes) != 0;

        for (var count = 0; ; count++)
        {
            if (!_reader.Fill(NbdMagic.OptionHeaderSize))
            {
                return false;
            }
            var header = _reader.Peek(NbdMagic.OptionHeaderSize);
            var magic = BinaryPrimitives.ReadUInt64BigEndian(header);
            var option = BinaryPrimitives.ReadUInt32BigEndian(header[8..]);
            var length = BinaryPrimitives.ReadUInt32BigEndian(header[12..]);
            _reader.Consume(NbdMagic.OptionHeaderSize);
            if (magic != NbdMagic.HaveOptions)
            {
                return Fail("bad option magic");
            }
            if (count >= _options.MaxOptions)
            {
                ReplyError(option, NbdOptionReplyType.ErrPolicy, $"more than {_options.MaxOptions} options");
                return Fail($"more than {_options.MaxOptions} options");
            }
            if (length > NbdLimits.MaxOptionLength)
            {
                ReplyError(option, NbdOptionReplyType.ErrTooBig, $"option data of {length} bytes is too long");
                return Fail($"option {option} with {length} bytes of data");
            }
            var data = new byte[length];
            _reader.ReadExact(data);

            switch ((NbdOption)option)
            {
                case NbdOption.ExportName:
                    return ExportName(data);
                case NbdOption.Abort:
                    Reply(option, NbdOptionReplyType.Ack, []);
                    return false;
                case NbdOption.List:
                    List(option, data);
                    break;
                case NbdOption.Info:
                case NbdOption.Go:
                    if (Info(option, data) && option == (uint)NbdOption.Go)
                    {
                        return true;
                    }
                    break;
                case NbdOption.StructuredReply:
                    if (data.Length != 0 || _structured)
                    {
                        ReplyError(option, NbdOptionReplyType.ErrInvalid,
                            _structured ? "structured replies are already on" : "unexpected option data");
                    }
                    else
                    {
                        _structured = true;
                        Reply(option, NbdOptionReplyType.Ack, []);
                    }
                    break;
                case NbdOption.ListMetaContext:
                case NbdOption.SetMetaContext:
                    MetaContext(option, data);
                    break;
                case NbdOption.StartTls:
                    ReplyError(option, NbdOptionReplyType.ErrUnsupported, "TLS is not enabled on this server");
                    break;
                default:
                    ReplyError(option, NbdOptionReplyType.ErrUnsupported, $"option {option} is not supported");
                    break;
            }
        }
    }

    private bool Fail(string reason)
    {
        NbdLog.HandshakeFailed(_logger, Id, reason);
        return false;
    }

    private bool ExportName(byte[] data)
    {
        var name = Encoding.UTF8.GetString(data);
        var export = _server.FindExport(name);
        if (export is null)
        {
            // This option has no way to report an error: the protocol says to disconnect.
            return Fail($"unknown export '{name}'");
        }
        Choose(export);
        var reply = new byte[_noZeroes ? 10 : 134];
        BinaryPrimitives.WriteUInt64BigEndian(reply, (ulong)export.Slot.Size);
        BinaryPrimitives.WriteUInt16BigEndian(reply.AsSpan(8), (ushort)_flags);
        SendRaw(reply);
        return true;
    }

    private void List(uint option, byte[] data)
    {
        if (data.Length != 0)
        {
            ReplyError(option, NbdOptionReplyType.ErrInvalid, "unexpected option data");
            return;
        }
        foreach (var export in _server.Exports)
        {
            var name = Encoding.UTF8.GetBytes(export.Name);
            var details = Encoding.UTF8.GetBytes(export.Description ?? "");
            var payload = new byte[4 + name.Length + details.Length];
            BinaryPrimitives.WriteUInt32BigEndian(payload, (uint)name.Length);
            name.CopyTo(payload, 4);
            details.CopyTo(payload, 4 + name.Length);
            Reply(option, NbdOptionReplyType.Server, payload);
        }
        Reply(option, NbdOptionReplyType.Ack, []);
    }

    /// <summary>NBD_OPT_INFO and NBD_OPT_GO. True when the export was found and described.</summary>
    private bool Info(uint option, byte[] data)
    {
        if (data.Length < 6)
        {
            ReplyError(option, NbdOptionReplyType.ErrInvalid, "option data too short");
            return false;
        }
        var nameLength = BinaryPrimitives.ReadUInt32BigEndian(data);
        if (nameLength > data.Length - 6)
        {
            ReplyError(option, NbdOptionReplyType.ErrInvalid, "export name runs past the option data");
            return false;
        }
        var name = Encoding.UTF8.GetString(data, 4, (int)nameLength);
        var requestCount = BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(4 + (int)nameLength));
        if (6 + nameLength + 2L * requestCount != data.Length)
        {
            ReplyError(option, NbdOptionReplyType.ErrInvalid, "information request list does not match the option length");
            return false;
        }
        var wanted = new HashSet<NbdInfoType>();
        for (var i = 0; i < requestCount; i++)
        {
            wanted.Add((NbdInfoType)BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(6 + (int)nameLength + 2 * i)));
        }
        var export = _server.FindExport(name);
        if (export is null)
        {
            ReplyError(option, NbdOptionReplyType.ErrUnknown, $"export '{name}' not found");
            return false;
        }

        var flags = FlagsFor(export);
        var info = new byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(info, (ushort)NbdInfoType.Export);
        BinaryPrimitives.WriteUInt64BigEndian(info.AsSpan(2), (ulong)export.Slot.Size);
        BinaryPrimitives.WriteUInt16BigEndian(info.AsSpan(10), (ushort)flags);
        Reply(option, NbdOptionReplyType.Info, info);
        if (wanted.Contains(NbdInfoType.Name))
        {
            Reply(option, NbdOptionReplyType.Info, InfoString(NbdInfoType.Name, export.Name));
        }
        if (wanted.Contains(NbdInfoType.Description) && export.Description is { } description)
        {
            Reply(option, NbdOptionReplyType.Info, InfoString(NbdInfoType.Description, description));
        }
        if (wanted.Contains(NbdInfoType.BlockSize) || option == (uint)NbdOption.Info)
        {
            var caps = export.Slot.Capabilities;
            var sizes = new byte[14];
            BinaryPrimitives.WriteUInt16BigEndian(sizes, (ushort)NbdInfoType.BlockSize);
            BinaryPrimitives.WriteUInt32BigEndian(sizes.AsSpan(2), (uint)caps.MinBlockSize);
            BinaryPrimitives.WriteUInt32BigEndian(sizes.AsSpan(6), (uint)Math.Max(caps.PreferredBlockSize, Math.Max(caps.MinBlockSize, 512)));
            BinaryPrimitives.WriteUInt32BigEndian(sizes.AsSpan(10), (uint)caps.MaxBlockSize);
            Reply(option, NbdOptionReplyType.Info, sizes);
        }
        Reply(option, NbdOptionReplyType.Ack, []);
        if (option == (uint)NbdOption.Go)
        {
            Choose(export);
        }
        return true;
    }

    private static byte[] InfoString(NbdInfoType type, string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        var payload = new byte[2 + bytes.Length];
        BinaryPrimitives.WriteUInt16BigEndian(payload, (ushort)type);
        bytes.CopyTo(payload, 2);
        return payload;
    }

    private void MetaContext(uint option, byte[] data)
    {
        var listing = option == (uint)NbdOption.ListMetaContext;
        if (!_structured)
        {
            ReplyError(option, NbdOptionReplyType.ErrInvalid, "structured replies must be negotiated first");
            return;
        }
        if (!TryParseMetaRequest(data, out var exportName, out var queries, out var problem))
        {
            ReplyError(option, NbdOptionReplyType.ErrInvalid, problem);
            return;
        }
        var export = _server.FindExport(exportName);
        if (export is null)
        {
            ReplyError(option, NbdOptionReplyType.ErrUnknown, $"export '{exportName}' not found");
            return;
        }
        foreach (var query in queries)
        {
            if (!MetaContextCatalog.IsValidQuery(query))
            {
                ReplyError(option, NbdOptionReplyType.ErrInvalid, $"query '{query}' has no namespace");
                return;
            }
        }
        var available = MetaContextCatalog.Available(export);
        var chosen = new List<string>();
        if (listing && queries.Count == 0)
        {
            chosen.AddRange(available);
        }
        else
        {
            foreach (var query in queries)
            {
                foreach (var name in MetaContextCatalog.Match(available, query, listing))
                {
                    if (!chosen.Contains(name))
                    {
                        chosen.Add(name);
                    }
                }
            }
        }
        if (!listing)
        {
            _selected.Clear();
            _metaExport = exportName;
        }
        for (var i = 0; i < chosen.Count; i++)
        {
            var id = listing ? 0u : (uint)(i + 1);
            if (!listing)
            {
                _selected.Add((id, chosen[i]));
            }
            var name = Encoding.UTF8.GetBytes(chosen[i]);
            var payload = new byte[4 + name.Length];
            BinaryPrimitives.WriteUInt32BigEndian(payload, id);
            name.CopyTo(payload, 4);
            Reply(option, NbdOptionReplyType.MetaContext, payload);
        }
        Reply(option, NbdOptionReplyType.Ack, []);
    }

    private static bool TryParseMetaRequest(byte[] data, out string exportName, out List<string> queries, out string problem)
    {
        exportName = "";
        queries = [];
        problem = "";
        var span = data.AsSpan();
        if (span.Length < 8)
        {
            problem = "option data too short";
            return false;
        }
        var nameLength = BinaryPrimitives.ReadUInt32BigEndian(span);
        if (nameLength > span.Length - 8)
        {
            problem = "export name runs past the option data";
            return false;
        }
        exportName = Encoding.UTF8.GetString(span.Slice(4, (int)nameLength));
        span = span[(4 + (int)nameLength)..];
        var count = BinaryPrimitives.ReadUInt32BigEndian(span);
        span = span[4..];
        for (var i = 0u; i < count; i++)
        {
            if (span.Length < 4)
            {
                problem = "query list runs past the option data";
                return false;
            }
            var length = BinaryPrimitives.ReadUInt32BigEndian(span);
            if (length > span.Length - 4 || length > NbdLimits.MaxNameLength)
            {
                problem = "query runs past the option data or is too long";
                return false;
            }
            queries.Add(Encoding.UTF8.GetString(span.Slice(4, (int)length)));
            span = span[(4 + (int)length)..];
        }
        if (!span.IsEmpty)
        {
            problem = "trailing bytes after the query list";
            return false;
        }
        return true;
    }

    private void Choose(NbdExport export)
    {
        Export = export;
        _flags = FlagsFor(export);
        if (_metaExport is null || _server.FindExport(_metaExport) != export)
        {
            // Contexts were chosen for another export (or never): none apply.
            _selected.Clear();
        }
    }

    private NbdTransmissionFlags FlagsFor(NbdExport export)
    {
        var caps = export.Slot.Capabilities;
        var flags = NbdTransmissionFlags.HasFlags | NbdTransmissionFlags.SendFlush | NbdTransmissionFlags.SendFua | NbdTransmissionFlags.SendCache;
        if (export.ReadOnly)
        {
            flags |= NbdTransmissionFlags.ReadOnly;
        }
        else
        {
            flags |= NbdTransmissionFlags.SendTrim | NbdTransmissionFlags.SendWriteZeroes | NbdTransmissionFlags.SendFastZero;
        }
        if (_structured)
        {
            flags |= NbdTransmissionFlags.SendDf;
        }
        if (caps.Has(Core.NodeFeatures.MultiConn) && _options.AdvertiseMultiConn)
        {
            flags |= NbdTransmissionFlags.CanMultiConn;
        }
        if (caps.Has(Core.NodeFeatures.Rotational))
        {
            flags |= NbdTransmissionFlags.Rotational;
        }
        return flags;
    }

    private void ReplyError(uint option, NbdOptionReplyType type, string message) =>
        Reply(option, type, Encoding.UTF8.GetBytes(message));

    private void Reply(uint option, NbdOptionReplyType type, byte[] payload)
    {
        var reply = new byte[NbdMagic.OptionReplyHeaderSize + payload.Length];
        NbdWire.WriteOptionReplyHeader(reply, option, type, (uint)payload.Length);
        payload.CopyTo(reply, NbdMagic.OptionReplyHeaderSize);
        SendRaw(reply);
    }

    private void SendRaw(ReadOnlySpan<byte> bytes) => SendAll(bytes);
}
