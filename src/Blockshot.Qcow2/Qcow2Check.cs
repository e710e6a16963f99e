namespace Blockshot.Qcow2;

/// <summary>
/// The consistency checker: counts corruptions and leaks exactly as <c>qemu-img check</c> does (exit
/// codes 0 clean, 1 incomplete, 2 corruptions, 3 leaks only) and repairs leaks or everything.
/// </summary>
public static class Qcow2Check
{
    /// <summary>Checks a closed image, repairing as asked (see <see cref="Qcow2Image.CheckAsync(string, Qcow2RepairMode)"/>).</summary>
    public static ValueTask<Qcow2CheckResult> RunAsync(string path, Qcow2RepairMode repair = Qcow2RepairMode.None) =>
        Qcow2Image.CheckAsync(path, repair);

    /// <summary>
    /// Checks an image that is open in this process, read-only or (with a repair mode) read-write.
    /// The node is quiesced for the duration: every cluster and the metadata lock are held.
    /// </summary>
    public static ValueTask<Qcow2CheckResult> RunAsync(Qcow2Node node, Qcow2RepairMode repair = Qcow2RepairMode.None)
    {
        ArgumentNullException.ThrowIfNull(node);
        return node.CheckAsync(repair);
    }
}
