using System.Globalization;

namespace Blockshot.Cli.Commands.Image;

/// <summary>
/// <c>-p</c> progress as the reference tool prints it: <c>    (42.00/100%)</c> rewritten in place on
/// stdout, at most every 100 ms, and a final line at 100%. Thread-safe; a null instance prints nothing.
/// </summary>
internal sealed class ProgressLine
{
    private readonly long _total;
    private readonly object _gate = new();
    private long _done;
    private long _lastPrint;
    private double _lastShown = -1;

    private ProgressLine(long total)
    {
        _total = Math.Max(total, 1);
        Print(0);
    }

    /// <summary>A progress line over <paramref name="total"/> units, or null when not wanted.</summary>
    public static ProgressLine? Start(bool wanted, long total) => wanted ? new ProgressLine(total) : null;

    /// <summary>Counts <paramref name="units"/> more as done.</summary>
    public void Add(long units)
    {
        var done = Interlocked.Add(ref _done, units);
        var now = Environment.TickCount64;
        if (now - Volatile.Read(ref _lastPrint) < 100)
        {
            return;
        }
        lock (_gate)
        {
            if (now - _lastPrint >= 100)
            {
                _lastPrint = now;
                Print(Math.Min(100.0, done * 100.0 / _total));
            }
        }
    }

    /// <summary>Prints 100% and ends the line.</summary>
    public void Finish()
    {
        lock (_gate)
        {
            Print(100);
            Console.Out.Write('\n');
            Console.Out.Flush();
        }
    }

    private void Print(double percent)
    {
        if (Math.Abs(percent - _lastShown) < 0.005)
        {
            return;
        }
        _lastShown = percent;
        Console.Out.Write(string.Create(CultureInfo.InvariantCulture, $"    ({percent:0.00}/100%)\r"));
        Console.Out.Flush();
    }
}
