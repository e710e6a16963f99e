using Blockshot.Fuse.Native;

namespace Blockshot.Fuse.Protocol;

/// <summary>The requests the session answers itself: INIT, DESTROY, INTERRUPT, FORGET, BATCH_FORGET.</summary>
internal sealed partial class FuseSession
{
    internal ValueTask<int> HandleInit(FuseRequest request)
    {
        var input = FuseInitIn.Read(request.Args);
        if (input.Major < KernelMajor)
        {
            return new(-Errno.EPROTO);
        }
        if (input.Major > KernelMajor)
        {
            // Answer with our major only; the kernel sends INIT again for version 7.
            new FuseInitOut(KernelMajor, SupportedMinor, 0, 0, 0, 0, 0, 0, 0, 0, 0).Write(request.Reply);
            return new(FuseInitOut.WireSize);
        }
        var wanted = FileSystem.Init(input);
        var offered = input.AllFlags;
        var flags = wanted.Flags & offered;
        if (((ulong)flags >> 32) != 0)
        {
            flags |= InitFlags.InitExt;
        }
        var reply = wanted with
        {
            Major = KernelMajor,
            Minor = Math.Min(input.Minor, SupportedMinor),
            MaxReadahead = Math.Min(wanted.MaxReadahead, input.MaxReadahead),
            Flags = flags,
            MaxWrite = Math.Clamp(wanted.MaxWrite, 4096, (uint)MaxWrite),
        };
        reply.Write(request.Reply);
        KernelInit = input;
        Negotiated = reply;
        FileSystem.Initialized(input, reply);
        return new(FuseInitOut.WireSize);
    }

    internal ValueTask<int> HandleDestroy()
    {
        FileSystem.Destroy();
        RequestStop(FuseSessionEnd.Destroyed);
        return new(0);
    }

    internal ValueTask<int> HandleInterrupt(FuseInterruptIn input)
    {
        // Block requests finish quickly; the interrupted request is answered when it completes.
        Interlocked.Increment(ref _interrupts);
        FileSystem.Interrupt(input.Unique);
        return new(0);
    }

    internal ValueTask<int> HandleForget(ulong nodeId, ulong nlookup)
    {
        FileSystem.Forget(nodeId, nlookup);
        return new(0);
    }

    internal ValueTask<int> HandleBatchForget(FuseRequest request)
    {
        var args = request.Args;
        var count = FuseBatchForgetIn.Read(args).Count;
        var items = args[FuseBatchForgetIn.WireSize..];
        for (var i = 0; i < count && (i + 1) * FuseForgetOne.WireSize <= items.Length; i++)
        {
            var one = FuseForgetOne.Read(items[(i * FuseForgetOne.WireSize)..]);
            FileSystem.Forget(one.NodeId, one.NLookup);
        }
        return new(0);
    }
}
