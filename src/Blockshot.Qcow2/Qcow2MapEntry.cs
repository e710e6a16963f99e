namespace Blockshot.Qcow2;

/// <summary>
/// One run of the guest disk as the reference tool's <c>map --output=json</c> describes it.
/// </summary>
/// <param name="Start">Guest offset.</param>
/// <param name="Length">Bytes in the run.</param>
/// <param name="Depth">Chain layer that decides the content (0 = this image); for runs no layer allocates, the bottom layer, or the layer whose backing file ends before the run.</param>
/// <param name="Present">Some layer allocates the run (data or zero clusters).</param>
/// <param name="Zero">The run reads as zeros.</param>
/// <param name="Data">The run reads data stored in a layer.</param>
/// <param name="Offset">Host offset of uncompressed data in <paramref name="File"/>, or null.</param>
/// <param name="Compressed">The data is stored compressed.</param>
/// <param name="File">The file holding the data, or null.</param>
public sealed record Qcow2MapEntry(long Start, long Length, int Depth, bool Present, bool Zero, bool Data, long? Offset, bool Compressed, string? File);
