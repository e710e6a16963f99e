using Blockshot.Core;
using Blockshot.Core.Buffers;
using Blockshot.Fuse.FileSystem;
using Blockshot.Fuse.Protocol;

namespace Blockshot.Fuse;

/// <summary>
/// A block node exported as a regular file through FUSE, optionally with a loop device on it. Start one
/// with <see cref="StartAsync"/>; <see cref="DisposeAsync"/> detaches the loop device, unmounts, and
/// waits for the requests in flight. The export does not own the node.
/// </summary>
public sealed class FuseExport : IAsyncDisposable
{
    private readonly FuseMount _mount;
    private readonly FuseSession _session;
    private readonly BlockFileSystem _fileSystem;
    private readonly SemaphoreSlim _disposeLock = new(1, 1);
    private LoopDevice? _loop;
    private bool _disposed;

    private FuseExport(BlockNode node, FuseExportOptions options, FuseMount mount, FuseSession session, BlockFileSystem fileSystem, FuseExportCounters counters)
    {
        Node = node;
        Options = options;
        _mount = mount;
        _session = session;
        _fileSystem = fileSystem;
        Counters = counters;
        counters.Bind(() => session.TotalRequests, () => session.Interrupts);
        _ = session.Completion.ContinueWith(
            static (_, state) => ((FuseExport)state!).OnSessionEnded(), this,
            CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>The node served.</summary>
    public BlockNode Node { get; }

    /// <summary>The options it was started with.</summary>
    public FuseExportOptions Options { get; }

    /// <summary>The mounted file, as a full path.</summary>
    public string Mountpoint => _mount.Target;

    /// <summary>The loop device on the file (<c>/dev/loopN</c>), or null without <see cref="FuseExportOptions.Loop"/>.</summary>
    public string? LoopDevicePath => _loop?.Path;

    /// <summary>True when the loop device runs with direct I/O to the file.</summary>
    public bool LoopDirectIo => _loop?.DirectIo ?? false;

    /// <summary>Why the loop device runs buffered although direct I/O was asked for, or null.</summary>
    public string? LoopDirectIoRefusal => _loop?.DirectIoRefusal;

    /// <summary>True when the export refuses writes (asked to, or the node cannot write).</summary>
    public bool ReadOnly => _fileSystem.ReadOnly;

    /// <summary>The largest READ or WRITE the kernel sends.</summary>
    public int MaxWrite => (int)_session.Negotiated.MaxWrite;

    /// <summary>The FUSE protocol version agreed with the kernel, e.g. 7.40.</summary>
    public Version ProtocolVersion => new((int)_session.Negotiated.Major, (int)_session.Negotiated.Minor);

    /// <summary>The kernel's own FUSE protocol version, from its INIT.</summary>
    public Version KernelProtocolVersion => new((int)_session.KernelInit.Major, (int)_session.KernelInit.Minor);

    /// <summary>Requests served, bytes moved, errors.</summary>
    public FuseExportCounters Counters { get; }

    /// <summary>The last failure a request reported, for diagnostics.</summary>
    public Exception? LastError => _fileSystem.LastError;

    /// <summary>Completes when the export stops serving: disposed, unmounted from outside, or failed.</summary>
    public Task Completion => _session.Completion;

    /// <summary>Raised once when the export stops serving, with the reason (e.g. unmounted from outside).</summary>
    public event EventHandler<FuseExportEndedEventArgs>? Ended;

    /// <summary>
    /// Mounts <paramref name="node"/> as the regular file <paramref name="mountpoint"/>, serves it, and
    /// (with <see cref="FuseExportOptions.Loop"/>) attaches a loop device to it. Returns once the
    /// kernel's INIT has been answered and the loop device is bound.
    /// </summary>
    public static async Task<FuseExport> StartAsync(BlockNode node, string mountpoint, FuseExportOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentException.ThrowIfNullOrEmpty(mountpoint);
        options ??= new FuseExportOptions();
        if (options.MaxWrite < 4096)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxWrite, "MaxWrite must be at least 4096");
        }
        var pool = options.BufferPool ?? BufferPool.Shared;
        var counters = new FuseExportCounters();
        var fileSystem = new BlockFileSystem(node, options, counters, pool);
        var mount = FuseMount.Mount(
            mountpoint, options.MountMethod, fileSystem.ReadOnly, options.AllowOther, fileSystem.MaxWrite, options.FsName, options.CreateMountpoint);
        FuseSession? session = null;
        FuseExport? export = null;
        try
        {
            session = new FuseSession(mount.Fd, fileSystem, fileSystem.MaxWrite, options.Readers, pool);
            session.Start();
            await session.Initialized.WaitAsync(options.StartTimeout, cancellationToken).ConfigureAwait(false);
            export = new FuseExport(node, options, mount, session, fileSystem, counters);
            if (options.Loop)
            {
                var readOnly = fileSystem.ReadOnly;
                var blockSize = options.LoopBlockSize;
                var directIo = options.DirectIo;
                // Attaching opens the file, which this process serves: keep it off the caller's thread.
                export._loop = await Task.Run(() => LoopDevice.Attach(mount.Target, readOnly, directIo, blockSize), cancellationToken).ConfigureAwait(false);
            }
            return export;
        }
        catch
        {
            if (export is not null)
            {
                await export.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                await ShutdownAsync(null, mount, session).ConfigureAwait(false);
            }
            throw;
        }
    }

    /// <summary>
    /// Tells the kernel the file's attributes (its size) changed behind its back, e.g. after the node
    /// was resized by other means. Returns false if the kernel did not take the notice.
    /// </summary>
    public bool InvalidateAttributes() => _session.NotifyInvalidateInode(BlockFileSystem.RootId, -1, 0);

    /// <summary>
    /// After the node changed size (resized by the daemon, or truncated through the file): drops the
    /// kernel's cached attributes, fetches them afresh, and makes the loop device take the new size.
    /// A loop device keeps the size it had until this is called. Blocks while the kernel asks this
    /// export for the attributes, so never call it from a node's request path.
    /// </summary>
    public void NotifySizeChanged()
    {
        InvalidateAttributes();
        if (!FuseMount.IsAlive(Mountpoint))
        {
            throw new IOException($"{Mountpoint} no longer answers");
        }
        _loop?.RefreshCapacity();
    }

    /// <summary>Detaches the loop device, unmounts, and waits for requests in flight. Idempotent.</summary>
    public async ValueTask DisposeAsync()
    {
        await _disposeLock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            var loop = _loop;
            _loop = null;
            await ShutdownAsync(loop, _mount, _session).ConfigureAwait(false);
        }
        finally
        {
            _disposeLock.Release();
        }
    }

    private static async Task ShutdownAsync(LoopDevice? loop, FuseMount mount, FuseSession? session)
    {
        List<Exception>? errors = null;
        session?.ExpectEnd();
        // Order matters: the loop device holds the file open, and the mount holds the connection; the
        // session keeps serving until both are gone, so that their last requests are answered.
        await Task.Run(() =>
        {
            Try(() => loop?.Detach(), ref errors);
            Try(mount.Unmount, ref errors);
        }).ConfigureAwait(false);
        if (session is not null)
        {
            session.Stop();
            await session.Completion.ConfigureAwait(false);
            session.Dispose();
        }
        mount.CloseDevice();
        if (errors is not null)
        {
            throw errors.Count == 1 ? errors[0] : new AggregateException("stopping the FUSE export failed", errors);
        }
    }

    private static void Try(Action action, ref List<Exception>? errors)
    {
        try
        {
            action();
        }
        catch (Exception e)
        {
            (errors ??= []).Add(e);
        }
    }

    private void OnSessionEnded()
    {
        var reason = _session.End switch
        {
            FuseSessionEnd.Unmounted => FuseExportEndReason.Unmounted,
            FuseSessionEnd.Destroyed => FuseExportEndReason.Unmounted,
            FuseSessionEnd.Failed => FuseExportEndReason.Failed,
            _ => FuseExportEndReason.Stopped,
        };
        Ended?.Invoke(this, new FuseExportEndedEventArgs(reason, _session.Fault));
    }
}
