"""FUSE file exports with a loop device on them, for the fuse rows (fuse_rows.py).

A FUSE server here mounts the image as a regular file (the mountpoint, beside the server's socket path)
and the rows run fio on a loop device bound to that file. Blockshot attaches its own loop device
(`serve --fuse MNT --loop`); qemu-storage-daemon gets one from `losetup --find --show --direct-io=on`
(PEERS.md), detached again before the server is stopped. Both run with direct I/O from the loop device
to the file, which is read back from sysfs and recorded with the run.
"""

import os
import shutil

SYS_BLOCK = "/sys/block"


def mountpoint(launch):
    """The file a FUSE server mounts the image on: the socket path with .img instead of .sock."""
    return os.path.splitext(launch.socket)[0] + ".img"


def create_mountpoint(spec, launch):
    """An empty regular file to mount on (qemu-storage-daemon needs it to exist)."""
    path = mountpoint(launch)
    with open(path, "a"):
        pass


def _unescape(field):
    """mountinfo escapes blanks, tabs, newlines and backslashes as octal (\\040)."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def is_fuse_mounted(path, mountinfo="/proc/self/mountinfo"):
    """True when a FUSE filesystem is mounted on path (from mountinfo: mount point, then '-', fstype)."""
    try:
        with open(mountinfo) as f:
            lines = f.read().splitlines()
    except OSError:
        return False
    for line in lines:
        fields = line.split(" ")
        if len(fields) < 7 or "-" not in fields[6:]:
            continue
        fstype = fields[fields.index("-", 6) + 1]
        if _unescape(fields[4]) == path and fstype.startswith("fuse"):
            return True
    return False


def loops_backed_by(path, sys_block=SYS_BLOCK):
    """The loop devices (/dev/loopN) whose backing file is path."""
    found = []
    try:
        names = sorted(os.listdir(sys_block))
    except OSError:
        return found
    for name in names:
        if not name.startswith("loop"):
            continue
        try:
            with open(os.path.join(sys_block, name, "loop", "backing_file")) as f:
                backing = f.read().strip()
        except OSError:
            continue
        if backing == path:
            found.append("/dev/" + name)
    return found


def loop_facts(device, sys_block=SYS_BLOCK):
    """What the kernel says about a loop device: direct I/O on, logical block size, backing file."""
    name = os.path.basename(device)

    def read(*parts):
        try:
            with open(os.path.join(sys_block, name, *parts)) as f:
                return f.read().strip()
        except OSError:
            return None

    dio = read("loop", "dio")
    block = read("queue", "logical_block_size")
    return {"device": device, "backing_file": read("loop", "backing_file"),
            "direct_io": None if dio is None else dio == "1",
            "logical_block_size": None if block is None else int(block)}


def mounted_with_own_loop(launch):
    """Ready test for a server that attaches its own loop device: mounted, and a loop device bound to it."""
    path = mountpoint(launch)
    return is_fuse_mounted(path) and bool(loops_backed_by(path))


def mounted(launch):
    """Ready test for a server that only mounts."""
    return is_fuse_mounted(mountpoint(launch))


def find_own_loop(spec, launch, cmdlog):
    """The loop device the server attached itself; nothing to undo (the server detaches it)."""
    loops = loops_backed_by(mountpoint(launch))
    if len(loops) != 1:
        raise RuntimeError(f"expected one loop device on {mountpoint(launch)}, found {loops}")
    return loops[0], None


def attach_losetup(spec, launch, cmdlog):
    """losetup --find --show --direct-io=on MNT (PEERS.md); returns the device and its detach step."""
    argv = ["losetup", "--find", "--show", "--direct-io=on", mountpoint(launch)]
    proc = cmdlog.run(argv, f"loop device for {spec.name}", timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
    device = proc.stdout.strip()

    def detach():
        cmdlog.run(["losetup", "--detach", device], f"detach {device}", timeout=60)

    return device, detach


def prepare_check():
    """Why FUSE rows cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (mounting FUSE files as root and attaching loop devices)"
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse does not exist"
    if shutil.which("losetup") is None:
        return "'losetup' is not installed or not on PATH"
    return None
