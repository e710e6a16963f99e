using System.Runtime.Versioning;

// Blockshot runs on Linux only: it drives /dev/fuse, loop devices, OFD locks and Linux system calls.
[assembly: SupportedOSPlatform("linux")]
