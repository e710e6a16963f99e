namespace Blockshot.Nbd.Internal;

/// <summary>
/// The metadata contexts an export offers — <c>base:allocation</c> plus every status context of its
/// node — and how queries select them.
/// </summary>
internal static class MetaContextCatalog
{
    public const string BaseAllocation = "base:allocation";

    /// <summary>Every context name the export offers.</summary>
    public static List<string> Available(NbdExport export)
    {
        var names = new List<string> { BaseAllocation };
        foreach (var context in export.Slot.StatusContexts)
        {
            if (!names.Contains(context.Name))
            {
                names.Add(context.Name);
            }
        }
        return names;
    }

    /// <summary>True when a query is well formed: a namespace followed by a colon.</summary>
    public static bool IsValidQuery(string query) => query.IndexOf(':', StringComparison.Ordinal) > 0;

    /// <summary>
    /// The contexts a query selects. Listing also accepts a bare namespace or a prefix ending in a
    /// colon (<c>qemu:</c>, <c>qemu:dirty-bitmap:</c>); setting selects exact names only.
    /// </summary>
    public static IEnumerable<string> Match(List<string> available, string query, bool listing)
    {
        foreach (var name in available)
        {
            if (name == query || (listing && query.EndsWith(':') && name.StartsWith(query, StringComparison.Ordinal)))
            {
                yield return name;
            }
        }
    }
}
