namespace Blockshot.Filters.Fault;

/// <summary>What happens to one request.</summary>
internal enum FaultAction
{
    Pass,
    Delay,
    Fail,
    DelayThenFail,
}
