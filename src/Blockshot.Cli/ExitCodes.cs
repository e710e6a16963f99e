namespace Blockshot.Cli;

/// <summary>The process exit codes of every command (documented in docs/cli.md).</summary>
internal static class ExitCodes
{
    /// <summary>The command did what was asked.</summary>
    public const int Success = 0;

    /// <summary>It failed for a reason other than those below (an I/O error, a refused request).</summary>
    public const int Failure = 1;

    /// <summary>The command line is wrong: unknown option, missing or malformed argument.</summary>
    public const int Usage = 2;

    /// <summary>A file, device or object named on the command line does not exist.</summary>
    public const int NotFound = 3;

    /// <summary>The image is locked or held by another process.</summary>
    public const int Locked = 4;

    /// <summary>Permission denied.</summary>
    public const int PermissionDenied = 5;

    /// <summary>The image format is unknown, unsupported or corrupt.</summary>
    public const int BadImage = 6;

    /// <summary>The daemon is not reachable: not running, another control socket, or no permission on it.</summary>
    public const int DaemonUnreachable = 7;

    /// <summary>The job a command waited for ended cancelled.</summary>
    public const int JobCancelled = 8;

    /// <summary>Interrupted (SIGINT) while waiting; whatever runs in the daemon goes on.</summary>
    public const int Interrupted = 130;
}
