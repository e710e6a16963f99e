using Blockshot.Daemon.Events;
using Blockshot.Daemon.Jobs;
using Blockshot.Daemon.Protocol;

namespace Blockshot.Daemon.Control.Methods;

/// <summary>What the methods act on.</summary>
internal sealed record DaemonServices(Registry Registry, JobManager Jobs, EventHub Events, Func<Task<DaemonInfo>> Info);
