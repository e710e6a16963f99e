namespace Blockshot.Snapshots.Storage;

/// <summary>A difference store ran low on space, or out of it.</summary>
/// <param name="Store">The store's description.</param>
/// <param name="UsedBytes">Bytes held by chunks.</param>
/// <param name="LimitBytes">The most the store may hold.</param>
/// <param name="Time">When it happened (UTC).</param>
public sealed record DiffStoreEventArgs(string Store, long UsedBytes, long LimitBytes, DateTimeOffset Time);
