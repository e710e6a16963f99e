using System.Diagnostics;
using System.Security.Cryptography;

namespace Blockshot.Interop.Tests;

/// <summary>`blockshot serve FILE --fuse PATH --loop`: a real block device with a real filesystem on it.</summary>
public class ServeFuseTests
{
    [RequiresRootFact("mkfs.ext4", "fsck.ext4", "losetup", "mount", "umount")]
    public async Task Ext4_on_the_loop_device_survives_unmount_fsck_and_a_second_serve()
    {
        using var dir = new TempDir();
        var image = dir.File("disk.raw");
        await using (var f = File.Create(image))
        {
            f.SetLength(256 << 20);
        }
        var mnt = Directory.CreateDirectory(dir.File("mnt")).FullName;
        var files = new Dictionary<string, string>();

        for (var pass = 0; pass < 2; pass++)
        {
            var psi = Run.Info(Repo.Launcher, ["serve", image, "--fuse", dir.File("exp.img"), "--loop"]);
            using var serve = Process.Start(psi)!;
            try
            {
                var device = await serve.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromMinutes(2));
                Assert.True(device is not null && device.StartsWith("/dev/loop", StringComparison.Ordinal), $"no loop device printed: {device} {await ReadErrAsync(serve)}");
                if (pass == 0)
                {
                    (await Run.ToEndAsync("mkfs.ext4", ["-q", "-F", device])).Ok("mkfs.ext4");
                }
                (await Run.ToEndAsync("mount", [device, mnt])).Ok("mount");
                try
                {
                    if (pass == 0)
                    {
                        var rng = new Random(1);
                        for (var i = 0; i < 40; i++)
                        {
                            var sub = Directory.CreateDirectory(Path.Combine(mnt, $"d{i % 5}")).FullName;
                            var data = new byte[rng.Next(1, 3 << 20)];
                            rng.NextBytes(data);
                            var path = Path.Combine(sub, $"f{i}");
                            await File.WriteAllBytesAsync(path, data);
                            files[Path.GetRelativePath(mnt, path)] = Convert.ToHexString(SHA256.HashData(data));
                        }
                    }
                    foreach (var (rel, hash) in files)
                    {
                        Assert.Equal(hash, Convert.ToHexString(SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(mnt, rel)))));
                    }
                }
                finally
                {
                    (await Run.ToEndAsync("umount", [mnt])).Ok("umount");
                }
                var fsck = await Run.ToEndAsync("fsck.ext4", ["-fn", device]);
                Assert.True(fsck.ExitCode == 0, $"fsck found problems: {fsck.Stdout} {fsck.Stderr}");
            }
            finally
            {
                kill(serve.Id, 15);
                await serve.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            }
            Assert.Equal(0, serve.ExitCode);
            var loops = (await Run.ToEndAsync("losetup", ["-a"])).Stdout;
            Assert.DoesNotContain(dir.File("exp.img"), loops);
            Assert.DoesNotContain(dir.File("exp.img"), await File.ReadAllTextAsync("/proc/self/mountinfo"));
        }
    }

    private static async Task<string> ReadErrAsync(Process p)
    {
        if (!p.HasExited)
        {
            return "";
        }
        return await p.StandardError.ReadToEndAsync();
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);
}
