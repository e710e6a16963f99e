namespace Blockshot.Snapshots.Tests;

/// <summary>Polls a condition that background work makes true.</summary>
public static class Waiting
{
    public static async Task UntilAsync(Func<bool> condition, string failure, int timeoutMs = 10_000)
    {
        var deadline = Environment.TickCount64 + timeoutMs;
        while (!condition() && Environment.TickCount64 < deadline)
        {
            await Task.Delay(20);
        }
        Assert.True(condition(), failure);
    }
}
