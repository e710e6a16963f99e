using Blockshot.Qcow2.Format;

namespace Blockshot.Qcow2;

public sealed partial class Qcow2Node
{
    /// <summary>
    /// Closes the image. A read-write image is closed cleanly first: bitmaps are stored, every cache is
    /// flushed and synced, and the dirty bit of lazy refcounts is cleared. Files are closed even when
    /// that fails.
    /// </summary>
    protected override async ValueTask DisposeCoreAsync()
    {
        try
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
                        if (_dirtyMarked && (_hc.Header.Incompatible & IncompatibleFeatures.Dirty) != 0)
                        {
                            _hc.Header.Incompatible &= ~IncompatibleFeatures.Dirty;
                            await WriteIncompatibleAsync().ConfigureAwait(false);
                        }
                    }
                    finally
                    {
                        _closed = true;
                        _meta.Release();
                    }
                }
            }
        }
        finally
        {
            _closed = true;
            _file.Dispose();
            _dataFile?.Dispose();
            if (_backing is not null)
            {
                await _backing.DisposeAsync().ConfigureAwait(false);
            }
        }
    }
}
