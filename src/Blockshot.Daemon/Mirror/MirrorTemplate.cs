using Blockshot.Core;
using Blockshot.Filters;

namespace Blockshot.Daemon.Mirror;

/// <summary>The mirror filter as a stack entry: rebuilt nodes share the job's <see cref="MirrorState"/>.</summary>
internal sealed class MirrorTemplate(MirrorState state, string target)
    : FilterTemplate("mirror", new Dictionary<string, string>
    {
        ["target"] = target,
        ["granularity"] = state.Dirty.Granularity.ToString(System.Globalization.CultureInfo.InvariantCulture),
    })
{
    public override IReadOnlyDictionary<string, long> Counters => new Dictionary<string, long>
    {
        ["dirty-bytes"] = state.Dirty.DirtyBytes,
        ["target-errors"] = state.TargetErrors,
        ["active"] = state.Active ? 1 : 0,
    };

    public override FilterNode Create(BlockNode next) => new MirrorFilter(next, state);
}
