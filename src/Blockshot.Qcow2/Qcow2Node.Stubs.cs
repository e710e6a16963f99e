namespace Blockshot.Qcow2;

public sealed partial class Qcow2Node
{
    private ValueTask LoadBitmapsAsync() => default;

    private void RegisterBitmapMetadata()
    {
    }

    private ValueTask MarkBitmapsInUseAsync() => default;

    private ValueTask RepairDirtyOnOpenAsync() =>
        throw new NotImplementedException("dirty repair");

    /// <inheritdoc/>
    protected override async ValueTask DisposeCoreAsync()
    {
        _closed = true;
        _file.Dispose();
        _dataFile?.Dispose();
        if (_backing is not null)
        {
            await _backing.DisposeAsync().ConfigureAwait(false);
        }
        _meta.Dispose();
    }
}
