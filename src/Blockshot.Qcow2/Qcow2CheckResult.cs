using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Blockshot.Qcow2;

/// <summary>What a check may repair.</summary>
public enum Qcow2RepairMode
{
    /// <summary>Only report.</summary>
    None,

    /// <summary>Repair leaked clusters (refcounts higher than the references).</summary>
    Leaks,

    /// <summary>Repair leaks and corruptions (refcounts too low, wrong COPIED flags, broken refcount structures).</summary>
    All,
}

/// <summary>
/// The outcome of a consistency check, with the counts, messages and exit code the reference checker
/// reports: 0 clean, 1 check incomplete, 2 corruptions, 3 leaks only.
/// </summary>
public sealed class Qcow2CheckResult
{
    private const int MaxMessages = 10000;
    private readonly List<string> _messages = [];
    private int _droppedMessages;

    /// <summary>The image checked.</summary>
    public string Filename { get; init; } = "";

    /// <summary>Corruptions found and not repaired.</summary>
    public int Corruptions { get; internal set; }

    /// <summary>Leaked clusters found and not repaired.</summary>
    public int Leaks { get; internal set; }

    /// <summary>Errors that kept the check from completing.</summary>
    public int CheckErrors { get; internal set; }

    /// <summary>Corruptions repaired.</summary>
    public int CorruptionsFixed { get; internal set; }

    /// <summary>Leaks repaired.</summary>
    public int LeaksFixed { get; internal set; }

    /// <summary>Offset just past the last cluster in use.</summary>
    public long ImageEndOffset { get; internal set; }

    /// <summary>Clusters of the virtual disk.</summary>
    public long TotalClusters { get; internal set; }

    /// <summary>Guest clusters allocated in the active table.</summary>
    public long AllocatedClusters { get; internal set; }

    /// <summary>Allocated clusters not contiguous with the previous one.</summary>
    public long FragmentedClusters { get; internal set; }

    /// <summary>Compressed clusters.</summary>
    public long CompressedClusters { get; internal set; }

    /// <summary>The messages the check printed, in order (ERROR…, Leaked…, Repairing…).</summary>
    public IReadOnlyList<string> Messages => _messages;

    /// <summary>0 clean, 1 check incomplete, 2 corruptions, 3 leaks only.</summary>
    public int ExitCode => CheckErrors > 0 ? 1 : Corruptions > 0 ? 2 : Leaks > 0 ? 3 : 0;

    /// <summary>True when nothing is wrong.</summary>
    public bool IsClean => ExitCode == 0;

    internal void Message(string text)
    {
        if (_messages.Count < MaxMessages)
        {
            _messages.Add(text);
        }
        else
        {
            _droppedMessages++;
        }
    }

    internal void TakeMessages(Qcow2CheckResult other)
    {
        foreach (var m in other._messages)
        {
            Message(m);
        }
        _droppedMessages += other._droppedMessages;
    }

    internal Qcow2CheckResult CloneCounts() => new()
    {
        Filename = Filename,
        Corruptions = Corruptions,
        Leaks = Leaks,
        CheckErrors = CheckErrors,
        CorruptionsFixed = CorruptionsFixed,
        LeaksFixed = LeaksFixed,
        TotalClusters = TotalClusters,
        AllocatedClusters = AllocatedClusters,
        FragmentedClusters = FragmentedClusters,
        CompressedClusters = CompressedClusters,
    };

    internal void CopyCountsFrom(Qcow2CheckResult other)
    {
        Corruptions = other.Corruptions;
        Leaks = other.Leaks;
        CheckErrors = other.CheckErrors;
        CorruptionsFixed = other.CorruptionsFixed;
        LeaksFixed = other.LeaksFixed;
        AllocatedClusters = other.AllocatedClusters;
        FragmentedClusters = other.FragmentedClusters;
        CompressedClusters = other.CompressedClusters;
    }

    /// <summary>The report in the shape of the reference tool's JSON output (zero optional counts omitted).</summary>
    public string ToJson()
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("image-end-offset", ImageEndOffset);
            w.WriteNumber("total-clusters", TotalClusters);
            w.WriteNumber("check-errors", CheckErrors);
            if (LeaksFixed != 0)
            {
                w.WriteNumber("leaks-fixed", LeaksFixed);
            }
            if (Leaks != 0)
            {
                w.WriteNumber("leaks", Leaks);
            }
            if (CorruptionsFixed != 0)
            {
                w.WriteNumber("corruptions-fixed", CorruptionsFixed);
            }
            if (Corruptions != 0)
            {
                w.WriteNumber("corruptions", Corruptions);
            }
            w.WriteNumber("allocated-clusters", AllocatedClusters);
            if (FragmentedClusters != 0)
            {
                w.WriteNumber("fragmented-clusters", FragmentedClusters);
            }
            if (CompressedClusters != 0)
            {
                w.WriteNumber("compressed-clusters", CompressedClusters);
            }
            w.WriteString("filename", Filename);
            w.WriteString("format", "qcow2");
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>The report as the reference tool prints it in human form (messages first).</summary>
    public string ToText()
    {
        var sb = new StringBuilder();
        foreach (var m in _messages)
        {
            sb.Append(m).Append('\n');
        }
        if (_droppedMessages > 0)
        {
            sb.Append(CultureInfo.InvariantCulture, $"({_droppedMessages} more messages not shown)\n");
        }
        if (LeaksFixed + CorruptionsFixed > 0)
        {
            sb.Append(CultureInfo.InvariantCulture,
                $"The following inconsistencies were found and repaired:\n\n    {LeaksFixed} leaked clusters\n    {CorruptionsFixed} corruptions\n\nDouble checking the fixed image now...\n");
        }
        if (ExitCode == 0)
        {
            sb.Append("No errors were found on the image.\n");
        }
        if (Corruptions > 0)
        {
            sb.Append(CultureInfo.InvariantCulture,
                $"\n{Corruptions} errors were found on the image.\nData may be corrupted, or further writes to the image may corrupt it.\n");
        }
        if (Leaks > 0)
        {
            sb.Append(CultureInfo.InvariantCulture,
                $"\n{Leaks} leaked clusters were found on the image.\nThis means waste of disk space, but no harm to data.\n");
        }
        if (CheckErrors > 0)
        {
            sb.Append(CultureInfo.InvariantCulture,
                $"\n{CheckErrors} internal errors have occurred during the check.\n");
        }
        if (TotalClusters != 0 && AllocatedClusters != 0)
        {
            sb.Append(CultureInfo.InvariantCulture,
                $"{AllocatedClusters}/{TotalClusters} = {AllocatedClusters * 100.0 / TotalClusters:F2}% allocated, {FragmentedClusters * 100.0 / AllocatedClusters:F2}% fragmented, {CompressedClusters * 100.0 / AllocatedClusters:F2}% compressed clusters\n");
        }
        if (ImageEndOffset != 0)
        {
            sb.Append(CultureInfo.InvariantCulture, $"Image end offset: {ImageEndOffset}\n");
        }
        return sb.ToString();
    }
}
