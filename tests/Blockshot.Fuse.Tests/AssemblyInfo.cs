using System.Runtime.Versioning;

// FUSE, mount(2) and loop devices are Linux interfaces.
[assembly: SupportedOSPlatform("linux")]
