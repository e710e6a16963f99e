namespace Blockshot.Qcow2;

public sealed partial class Qcow2Node
{


    /// <inheritdoc/>
    protected override async ValueTask DisposeCoreAsync()
    {
        if (!_readOnly && !_closed)
        {
            using (await _ranges.AcquireAsync(0, long.MaxValue).ConfigureAwait(false))
            {
                await _meta.WaitAsync().ConfigureAwait(false);
                try
                {
                    await StoreBitmapsAsync().ConfigureAwait(false);
                    await FlushMetadataAsync().ConfigureAwait(false);
                    if (_dirtyMarked && (_hc.Header.Incompatible & Format.IncompatibleFeatures.Dirty) != 0)
                    {
                        _hc.Header.Incompatible &= ~Format.IncompatibleFeatures.Dirty;
                        await WriteIncompatibleAsync().ConfigureAwait(false);
                    }
                }
                finally
                {
                    _meta.Release();
                }
            }
        }
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
