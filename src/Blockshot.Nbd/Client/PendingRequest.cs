using Blockshot.Core.Extents;

namespace Blockshot.Nbd.Client;

/// <summary>One request of <see cref="NbdClientNode"/> waiting for its reply.</summary>
internal sealed class PendingRequest(string operation, long offset, Memory<byte> readBuffer, ExtentList? extents)
{
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>What the request was, for messages.</summary>
    public string Operation { get; } = operation;

    /// <summary>The request's offset (read and block-status replies are relative to it).</summary>
    public long Offset { get; } = offset;

    /// <summary>Where a read's data goes.</summary>
    public Memory<byte> ReadBuffer { get; } = readBuffer;

    /// <summary>Where a block-status reply's extents go.</summary>
    public ExtentList? Extents { get; } = extents;

    /// <summary>The first error chunk's errno and message, if any.</summary>
    public (int Errno, string? Message)? Error { get; set; }

    /// <summary>Completes when the final reply chunk arrived.</summary>
    public Task Completion => _done.Task;

    /// <summary>Ends the request with what the server said.</summary>
    public void Complete()
    {
        if (Error is { } e)
        {
            _done.TrySetException(new NbdClientException(Operation, e.Errno, e.Message));
        }
        else
        {
            _done.TrySetResult();
        }
    }

    /// <summary>Ends the request because the connection failed.</summary>
    public void Fail(Exception e) => _done.TrySetException(e);
}
