using Blockshot.Core;
using Blockshot.Daemon.Protocol;
using Blockshot.Fuse;
using Microsoft.Extensions.Logging;

namespace Blockshot.Daemon.Exports;

/// <summary>
/// FUSE exports: a slot (a device's, or one over a snapshot's export node) shown as a regular file at an
/// absolute path, optionally with a loop device on it. Serving through a device's slot keeps filter swaps,
/// suspend and reload working under the file.
/// Every mount is written to <see cref="FuseMountRecords"/> before it is made and removed once it is gone,
/// so a daemon killed with SIGKILL leaves nothing the next start cannot clean (<see cref="CleanLeftovers"/>).
/// </summary>
internal sealed class FuseExportProvider : IExportProvider
{
    private readonly FuseMountRecords _records;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Handle> _running = new(StringComparer.Ordinal); // by path

    public FuseExportProvider(FuseMountRecords records, ILogger logger)
    {
        _records = records;
        _logger = logger;
        UnavailableReason = File.Exists("/dev/fuse") ? null : "/dev/fuse does not exist on this machine (load the fuse module)";
    }

    public string Type => "fuse";

    public string? UnavailableReason { get; }

    public string? UriOf(string name) => null;

    /// <summary>
    /// Cleans what a previous run of this daemon left (stale mounts, loop devices on them, the files it
    /// created), as recorded in the state file. Failures are logged; they never stop the daemon.
    /// </summary>
    public void CleanLeftovers()
    {
        List<FuseMountRecord> leftovers;
        try
        {
            leftovers = _records.ReadLeftovers();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            DaemonLog.FuseRecordUnreadable(_logger, _records.File, e);
            return;
        }
        foreach (var record in leftovers)
        {
            try
            {
                var cleanup = FuseStaleCleaner.Clean(record);
                DaemonLog.FuseLeftoverCleaned(_logger, record.Export, cleanup.ToString());
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                DaemonLog.FuseLeftoverFailed(_logger, record.Export, record.Path, e);
            }
        }
        if (leftovers.Count > 0)
        {
            _records.ClearLeftovers();
        }
    }

    public async Task<IExportHandle> StartAsync(ExportRequest request, Slot slot)
    {
        var path = CheckPath(request.Path);
        Handle handle;
        lock (_lock)
        {
            if (_running.TryGetValue(path, out var other))
            {
                throw new ControlException(ControlErrorCodes.AlreadyExists, $"export {other.Name} is mounted at {path}");
            }
            handle = new Handle(this, request.Name, path);
            _running.Add(path, handle);
        }
        try
        {
            Record(new FuseMountRecord(path, request.Name, CreatedFile: !File.Exists(path), LoopDevice: null));
            var options = new FuseExportOptions { ReadOnly = request.ReadOnly, Loop = request.Loop };
            try
            {
                handle.Export = await FuseExport.StartAsync(slot, path, options).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or TimeoutException or ArgumentException)
            {
                _records.Remove(path);
                throw StartFailed(request.Name, path, e);
            }
            handle.Export.Ended += (_, e) => handle.OnEnded(e);
            Record(new FuseMountRecord(path, request.Name, CreatedFile: false, handle.Export.LoopDevicePath), update: true);
            DaemonLog.FuseMounted(_logger, request.Name, path, handle.Export.LoopDevicePath ?? "none");
            return handle;
        }
        catch
        {
            lock (_lock)
            {
                _running.Remove(path);
            }
            throw;
        }
    }

    /// <summary>Stops every FUSE export (daemon shutdown): detach loop devices, unmount, answer what is in flight.</summary>
    public async Task StopAllAsync()
    {
        List<Handle> running;
        lock (_lock)
        {
            running = [.. _running.Values];
        }
        foreach (var handle in running)
        {
            await handle.StopAsync().ConfigureAwait(false);
        }
    }

    private void Record(FuseMountRecord record, bool update = false)
    {
        try
        {
            if (update)
            {
                _records.SetLoopDevice(record.Path, record.LoopDevice);
            }
            else
            {
                _records.Add(record);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Without the record a killed daemon would leave this mount behind for good: refuse instead.
            throw new ControlException(ControlErrorCodes.IoError, $"cannot record the FUSE mount at {record.Path} in {_records.File}: {e.Message}", e);
        }
    }

    private async Task StopAsync(Handle handle)
    {
        lock (_lock)
        {
            if (!_running.Remove(handle.Path))
            {
                return;
            }
        }
        if (handle.Export is { } export)
        {
            handle.Stopping = true;
            try
            {
                await export.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or AggregateException or UnauthorizedAccessException)
            {
                DaemonLog.FuseStopFailed(_logger, handle.Name, handle.Path, e);
            }
        }
        if (FuseMount.IsFuseMounted(handle.Path))
        {
            // Still there (unmounting failed): keep the record, so the next start cleans it.
            return;
        }
        try
        {
            _records.Remove(handle.Path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            DaemonLog.FuseRecordUnwritable(_logger, _records.File, e);
        }
    }

    private static string CheckPath(string? path)
    {
        if (path is null)
        {
            throw new ControlException(ControlErrorCodes.InvalidParams, "a fuse export needs a path: the regular file to mount the device on");
        }
        if (!Path.IsPathFullyQualified(path))
        {
            throw new ControlException(ControlErrorCodes.InvalidParams, $"the path '{path}' is not absolute");
        }
        var full = Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            throw new ControlException(ControlErrorCodes.InvalidParams, $"{full} is a directory; a fuse export mounts on a regular file (which is created if missing)");
        }
        if (Path.GetDirectoryName(full) is { } parent && !Directory.Exists(parent))
        {
            throw new ControlException(ControlErrorCodes.NotFound, $"the directory {parent} does not exist");
        }
        return full;
    }

    private static ControlException StartFailed(string name, string path, Exception e)
    {
        var code = e switch
        {
            SystemCallException { Errno: 1 or 13 } => ControlErrorCodes.PermissionDenied, // EPERM, EACCES
            UnauthorizedAccessException => ControlErrorCodes.PermissionDenied,
            TimeoutException => ControlErrorCodes.Timeout,
            ArgumentException => ControlErrorCodes.InvalidParams,
            IOException when FuseMount.IsFuseMounted(path) => ControlErrorCodes.AlreadyExists,
            _ => ControlErrorCodes.IoError,
        };
        return new ControlException(code, $"cannot export {name} over FUSE at {path}: {e.Message}", e);
    }

    private sealed class Handle(FuseExportProvider owner, string name, string path) : IExportHandle
    {
        public string Name => name;

        public FuseExport? Export { get; set; }

        private volatile bool _stopping;

        public bool Stopping
        {
            get => _stopping;
            set => _stopping = value;
        }

        /// <summary>The file's open handles: each process that has it open, and its loop device, counts once.</summary>
        public int Clients => Export?.Counters.OpenFiles ?? 0;

        public string Path => path;

        public string? LoopDevice => Export?.LoopDevicePath;

        public Task StopAsync() => owner.StopAsync(this);

        public void OnEnded(FuseExportEndedEventArgs e)
        {
            if (!Stopping)
            {
                DaemonLog.FuseEnded(owner._logger, name, path, e.Reason.ToString(), e.Fault);
            }
        }
    }
}
