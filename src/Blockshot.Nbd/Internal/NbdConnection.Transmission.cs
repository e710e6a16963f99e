using Blockshot.Nbd.Protocol;

namespace Blockshot.Nbd.Internal;

/// <summary>The reader: parses requests, checks them against what was negotiated, hands them to lanes.</summary>
internal sealed partial class NbdConnection
{
    /// <summary>
    /// Reads requests until the client disconnects; returns why it stopped. Runs on the connection's
    /// thread: a request whose work completes at once is served inline, and its reply goes out with
    /// the others owed before the next receive.
    /// </summary>
    private string ReadLoop()
    {
        var export = Export!;
        var maxLength = (uint)export.Slot.Capabilities.MaxBlockSize;
        while (true)
        {
            if (!_reader.Fill(NbdMagic.RequestSize))
            {
                return "client closed the connection";
            }
            if (!NbdRequest.TryRead(_reader.Peek(NbdMagic.RequestSize), out var request))
            {
                NbdLog.ProtocolError(_logger, Id, "bad request magic");
                return "protocol error: bad request magic";
            }
            _reader.Consume(NbdMagic.RequestSize);
            if (request.Command == NbdCommand.Disconnect)
            {
                return "client sent disconnect";
            }

            var (error, message) = Check(request, export, maxLength);
            // A refused request holds no payload buffer, so it spends none of the budget.
            var payload = error == 0 && request.Command is (NbdCommand.Read or NbdCommand.Write) ? request.Length : 0;
            var lane = AcquireLane(payload);
            try
            {
                lane.Request = request;
                lane.PresetError = error;
                lane.PresetMessage = message;
                if (request.Command == NbdCommand.Write)
                {
                    if (error != 0)
                    {
                        // Stay in sync: the payload is read and dropped.
                        _reader.Skip(request.Length);
                    }
                    else if (request.Length > 0)
                    {
                        var buffer = _pool.Rent((int)request.Length);
                        lane.Buffer = buffer;
                        _reader.ReadExact(buffer.Memory.Span);
                    }
                }
            }
            catch
            {
                // The client went away mid-payload: the lane never ran, so it goes back unused.
                AbandonLane(lane);
                throw;
            }
            Dispatch(lane);
        }
    }

    /// <summary>Protocol-level checks; range checks happen in the slot.</summary>
    private (uint Error, string? Message) Check(NbdRequest request, NbdExport export, uint maxLength)
    {
        var allowed = NbdCommandFlags.Fua;
        switch (request.Command)
        {
            case NbdCommand.Read:
                if (_structured)
                {
                    allowed |= NbdCommandFlags.DontFragment;
                }
                break;
            case NbdCommand.Write:
            case NbdCommand.Trim:
                break;
            case NbdCommand.WriteZeroes:
                allowed |= NbdCommandFlags.NoHole | NbdCommandFlags.FastZero;
                break;
            case NbdCommand.Flush:
            case NbdCommand.Cache:
                break;
            case NbdCommand.BlockStatus:
                allowed |= NbdCommandFlags.ReqOne;
                if (!_structured || _selected.Count == 0)
                {
                    return (NbdErrors.Invalid, "BLOCK_STATUS needs structured replies and a selected metadata context");
                }
                if (request.Length == 0)
                {
                    return (NbdErrors.Invalid, "BLOCK_STATUS of zero length");
                }
                break;
            default:
                return (NbdErrors.Invalid, $"unknown command {(ushort)request.Command}");
        }
        if ((request.Flags & ~allowed) != 0)
        {
            return (NbdErrors.Invalid, $"flags 0x{(ushort)request.Flags:x} are not valid on {request.Command}");
        }
        if (export.ReadOnly && request.Command is NbdCommand.Write or NbdCommand.WriteZeroes or NbdCommand.Trim)
        {
            return (NbdErrors.Perm, $"export '{export.Name}' is read-only");
        }
        if (request.Command is NbdCommand.Read or NbdCommand.Write && request.Length > maxLength)
        {
            return (NbdErrors.Invalid, $"request of {request.Length} bytes exceeds the {maxLength}-byte maximum");
        }
        if (request.Offset > long.MaxValue)
        {
            return (request.Command is NbdCommand.Write or NbdCommand.WriteZeroes ? NbdErrors.NoSpace : NbdErrors.Invalid,
                "offset out of range");
        }
        return (0, null);
    }
}
