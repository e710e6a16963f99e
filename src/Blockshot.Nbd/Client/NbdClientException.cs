namespace Blockshot.Nbd.Client;

/// <summary>The server answered a request with an error.</summary>
public sealed class NbdClientException(string operation, int errno, string? serverMessage)
    : IOException($"{operation} failed: errno {errno}{(serverMessage is null ? "" : ": " + serverMessage)}")
{
    /// <summary>The errno the server sent.</summary>
    public int Errno { get; } = errno;
}
