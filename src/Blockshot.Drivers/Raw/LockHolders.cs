using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Blockshot.Drivers.Raw;

/// <summary>
/// Finds which processes hold a lock byte of a file, for error messages. OFD locks carry no owner pid
/// (/proc/locks shows -1), but each process's /proc/PID/fdinfo/FD lists the locks held through that
/// descriptor as <c>lock: 1: OFDLCK ADVISORY READ -1 MAJ:MIN:INODE START END</c>. The scan is best
/// effort and bounded in time: it runs only when an open has already failed.
/// </summary>
internal static class LockHolders
{
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(2);

    /// <summary>
    /// "qemu-nbd (pid 123), dotnet (pid 456, this process)", or empty when none is found. The asking
    /// descriptor <paramref name="ownFd"/> of this process is left out: it holds its own fresh locks.
    /// </summary>
    public static string Describe(in FileStat stat, long lockByte, int ownFd)
    {
        var key = string.Create(CultureInfo.InvariantCulture, $"{stat.DevMajor:x2}:{stat.DevMinor:x2}:{stat.Inode}");
        var found = new StringBuilder();
        var self = Environment.ProcessId;
        var clock = Stopwatch.StartNew();

        // This process first: another node of ours is the likeliest holder, and the cheapest to find.
        if (HoldsLock($"/proc/{self}", key, lockByte, ownFd, clock))
        {
            found.Append(CultureInfo.InvariantCulture, $"{ReadComm($"/proc/{self}")} (pid {self}, this process)");
        }
        foreach (var dir in EnumerateOrEmpty("/proc"))
        {
            if (clock.Elapsed > Budget)
            {
                break;
            }
            var name = Path.GetFileName(dir);
            if (!int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid == self
                || !HoldsLock(dir, key, lockByte, -1, clock))
            {
                continue;
            }
            if (found.Length > 0)
            {
                found.Append(", ");
            }
            found.Append(CultureInfo.InvariantCulture, $"{ReadComm(dir)} (pid {pid})");
        }
        return found.ToString();
    }

    private static bool HoldsLock(string processDir, string key, long lockByte, int skipFd, Stopwatch clock)
    {
        var skip = skipFd.ToString(CultureInfo.InvariantCulture);
        foreach (var info in EnumerateOrEmpty(Path.Combine(processDir, "fdinfo")))
        {
            if (clock.Elapsed > Budget)
            {
                return false;
            }
            if (Path.GetFileName(info) == skip)
            {
                continue;
            }
            string[] lines;
            try
            {
                lines = File.ReadAllLines(info);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The descriptor was closed or the process exited while we looked: not a holder.
                continue;
            }
            foreach (var line in lines)
            {
                if (line.StartsWith("lock:", StringComparison.Ordinal) && Covers(line, key, lockByte))
                {
                    return true;
                }
            }
        }
        return false;
    }

    /// <summary>True when a fdinfo lock line names the file <paramref name="key"/> and covers the byte.</summary>
    internal static bool Covers(string line, string key, long lockByte)
    {
        if (line.Contains("->", StringComparison.Ordinal))
        {
            return false; // a waiter, not a holder
        }
        var fields = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        for (var i = 0; i + 2 < fields.Length; i++)
        {
            if (fields[i] != key)
            {
                continue;
            }
            if (!long.TryParse(fields[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var start))
            {
                return false;
            }
            var end = fields[i + 2] == "EOF" ? long.MaxValue
                : long.TryParse(fields[i + 2], NumberStyles.None, CultureInfo.InvariantCulture, out var e) ? e : -1;
            return start <= lockByte && lockByte <= end;
        }
        return false;
    }

    private static string ReadComm(string processDir)
    {
        try
        {
            return File.ReadAllText(Path.Combine(processDir, "comm")).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "a process that has exited";
        }
    }

    private static IEnumerable<string> EnumerateOrEmpty(string dir)
    {
        try
        {
            return Directory.GetFileSystemEntries(dir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The process exited, or its fd table is not ours to read.
            return [];
        }
    }
}
