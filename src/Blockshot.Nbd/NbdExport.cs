using Blockshot.Core;

namespace Blockshot.Nbd;

/// <summary>An export: a name clients ask for, bound to a device's slot.</summary>
public sealed class NbdExport
{
    /// <summary>Creates an export of <paramref name="slot"/> under <paramref name="name"/>.</summary>
    public NbdExport(string name, Slot slot, bool readOnly = false, string? description = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(slot);
        if (System.Text.Encoding.UTF8.GetByteCount(name) > NbdLimits.MaxNameLength)
        {
            throw new ArgumentException($"export name is longer than {NbdLimits.MaxNameLength} bytes", nameof(name));
        }
        Name = name;
        Slot = slot;
        ReadOnly = readOnly || slot.ReadOnly || !slot.Capabilities.CanWrite;
        Description = description;
    }

    /// <summary>The name clients ask for.</summary>
    public string Name { get; }

    /// <summary>The slot requests go to; it validates every request.</summary>
    public Slot Slot { get; }

    /// <summary>True when clients may not write.</summary>
    public bool ReadOnly { get; }

    /// <summary>A human-readable description, sent when clients ask.</summary>
    public string? Description { get; }

    /// <summary>Connections past the handshake on this export now.</summary>
    public int TransmittingConnections => Volatile.Read(ref _transmitting);

    private int _transmitting;

    internal void OnTransmitting() => Interlocked.Increment(ref _transmitting);

    internal void OnTransmissionEnded() => Interlocked.Decrement(ref _transmitting);
}
