"""The servers under test, as data.

A server is a name, the executables it needs, the image formats it can serve, a function that builds
its command line from a Launch, and an optional prepare step (Blockshot builds once before timing).
To add a server, write its command function and append a ServerSpec to SERVERS.
"""

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Callable, Optional

from . import fuse_mounts, util

EXPORT_NAME = "disk"
SHARED_CONNECTIONS = 8


@dataclass(frozen=True)
class Launch:
    """What a server is asked to export."""
    image: str
    fmt: str
    socket: str
    name: str = EXPORT_NAME
    shared: int = SHARED_CONNECTIONS
    read_only: bool = False

    @property
    def uri(self):
        return f"nbd+unix:///{self.name}?socket={self.socket}"


@dataclass
class Prepared:
    """The outcome of checking a server before the run: usable or not, and why; its version."""
    ok: bool
    reason: str = ""
    version: str = ""
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ServerSpec:
    name: str
    tools: tuple                     # executables needed (looked up on PATH unless absolute)
    formats: tuple                   # image formats it can serve
    command: Callable[["ServerSpec", Launch, dict], list]
    version_argv: tuple = ()
    prepare: Optional[Callable[["ServerSpec", dict, util.CommandLog], Prepared]] = None
    cwd: Optional[Callable[[dict], str]] = None
    note: str = ""
    features: tuple = ("nbd",)       # what rows it can run (Scenario.needs)
    process: bool = True             # False: a tool run per job (qemu-img), nothing to start
    setup: Optional[Callable[["ServerSpec", Launch], None]] = None   # files the command needs
    # Servers that do not listen for NBD: when it returns True the server is up (instead of the socket probe).
    ready: Optional[Callable[[Launch], bool]] = None
    # Run once the server is up: returns (block device the rows use, undo step run before the server stops).
    attach: Optional[Callable[["ServerSpec", Launch, util.CommandLog], tuple]] = None

    def supports(self, scenario):
        return scenario.image in self.formats and any(f in self.features for f in scenario.needs)


# -- command lines (PEERS.md) -------------------------------------------------------------------

def _qemu_nbd(spec, launch, opts):
    argv = ["qemu-nbd", "-f", launch.fmt, "-t", "-e", str(launch.shared), "--cache=writeback",
            "-x", launch.name, "-k", launch.socket]
    if launch.read_only:
        argv.append("-r")
    return argv + [launch.image]


def _nbdkit(spec, launch, opts):
    # nbdkit serves any export name; its default thread model (parallel) is used.
    argv = ["nbdkit", "-U", launch.socket, "-f"]
    if launch.read_only:
        argv.append("-r")
    return argv + ["file", launch.image]


def _blockshot(spec, launch, opts):
    argv = [opts["blockshot"], "serve", launch.image, "-f", launch.fmt, "--socket", launch.socket,
            "--name", launch.name, "--shared", str(launch.shared)]
    if launch.read_only:
        argv.append("--read-only")
    return argv


def _daemon_paths(launch):
    base = os.path.splitext(launch.socket)[0]
    return base + ".control", base + ".json"


def _blockshot_daemon(spec, launch, opts):
    control, config = _daemon_paths(launch)
    return [opts["blockshot"], "daemon", "--control", control, "--nbd-socket", launch.socket,
            "--config", config]


def _blockshot_daemon_setup(spec, launch):
    """The daemon's configuration: one device over the image, exported under the row's name."""
    _, config = _daemon_paths(launch)
    with open(config, "w") as f:
        json.dump({"devices": [{"name": "disk", "file": launch.image, "format": launch.fmt,
                                "read-only": launch.read_only}],
                   "exports": [{"device": "disk", "name": launch.name}]}, f)


def _blockshot_snap_setup(spec, launch):
    """The snapshot rows' daemon: device 'disk' over the raw image (kind 'snapraw'), exported as NAME."""
    _, config = _daemon_paths(launch)
    with open(config, "w") as f:
        json.dump({"devices": [{"name": "disk", "file": launch.image, "format": "raw"}],
                   "exports": [{"device": "disk", "name": launch.name}]}, f)


TRACKED_DEVICE = "disk"
UNTRACKED_DEVICE = "plain"


def untracked_image(image):
    """The cbt rows' second device: a copy of the same image beside the first."""
    return image + ".untracked"


def _blockshot_cbt_setup(spec, launch):
    """The cbt rows' daemon: devices 'disk' (tracked once it is up) and 'plain' over two identical copies.

    The second copy is made here like the runner's (cp --reflink=never, then sync), so both devices start
    from identically written, fully allocated files.
    """
    plain = untracked_image(launch.image)
    subprocess.run(["cp", "--reflink=never", launch.image, plain], check=True, stdin=subprocess.DEVNULL)
    subprocess.run(["sync"], check=True)
    _, config = _daemon_paths(launch)
    with open(config, "w") as f:
        json.dump({"devices": [{"name": TRACKED_DEVICE, "file": launch.image, "format": "raw"},
                               {"name": UNTRACKED_DEVICE, "file": plain, "format": "raw"}],
                   "exports": [{"device": TRACKED_DEVICE, "name": launch.name},
                               {"device": UNTRACKED_DEVICE, "name": UNTRACKED_DEVICE}]}, f)


def daemon_control(launch):
    return _daemon_paths(launch)[0]


def _blockshot_fuse(spec, launch, opts):
    return [opts["blockshot"], "serve", launch.image, "-f", launch.fmt, "--fuse", fuse_mounts.mountpoint(launch),
            "--loop"]


def _qsd_fuse(spec, launch, opts):
    """qemu-storage-daemon's FUSE export of a raw node over a file node (PEERS.md)."""
    return ["qemu-storage-daemon",
            "--blockdev", f"driver=file,node-name=f,filename={launch.image}",
            "--blockdev", f"driver={launch.fmt},node-name=r,file=f",
            "--export", f"type=fuse,id=e,node-name=r,mountpoint={fuse_mounts.mountpoint(launch)},"
                        f"writable={'off' if launch.read_only else 'on'}"]


def _fuse_prepare(inner):
    """FUSE rows need root, /dev/fuse and losetup, then whatever the server itself needs."""
    def prepare_fuse(spec, opts, cmdlog):
        reason = fuse_mounts.prepare_check()
        if reason is not None:
            return Prepared(False, reason)
        if inner is not None:
            return inner(spec, opts, cmdlog)
        proc = cmdlog.run(list(spec.version_argv), f"{spec.name} version", timeout=30)
        if proc.returncode != 0:
            return Prepared(False, f"'{util.shell_join(spec.version_argv)}' failed: {util.tail(proc.stderr, 3)}")
        return Prepared(True, version=proc.stdout.strip().splitlines()[0] if proc.stdout.strip() else "")
    return prepare_fuse


def _no_process(spec, launch, opts):
    return []


def _blockshot_prepare(spec, opts, cmdlog):
    """The launcher builds on first use: build (and learn the version) once, before any timing."""
    launcher = opts["blockshot"]
    if not os.path.exists(launcher):
        return Prepared(False, f"the launcher {launcher} does not exist (Blockshot's server is not "
                               f"built in this checkout; pass --blockshot PATH to point at one)")
    if not os.access(launcher, os.X_OK):
        return Prepared(False, f"the launcher {launcher} is not executable")
    util.info(f"blockshot: building/checking with '{launcher} --version' "
              f"(timeout {opts['build_timeout']} s) ...")
    proc = cmdlog.run([launcher, "--version"], "blockshot build + version",
                      cwd=opts["repo_root"], timeout=opts["build_timeout"])
    if proc.returncode != 0:
        return Prepared(False, f"'{launcher} --version' failed (exit {proc.returncode}):\n"
                               f"{util.tail(proc.stdout + proc.stderr)}")
    version = (proc.stdout.strip() or proc.stderr.strip()).splitlines()
    return Prepared(True, version=version[-1] if version else "",
                    details={"launcher": launcher})


def _blockshot_cwd(opts):
    return opts["repo_root"]


SERVERS = [
    ServerSpec("blockshot", tools=(), formats=("raw", "qcow2"), command=_blockshot,
               prepare=_blockshot_prepare, cwd=_blockshot_cwd,
               note="./blockshot serve IMAGE -f FMT --socket SOCK --name NAME --shared 8"),
    ServerSpec("qemu-nbd", tools=("qemu-nbd",), formats=("raw", "qcow2"), command=_qemu_nbd,
               version_argv=("qemu-nbd", "--version"),
               note="qemu-nbd -f raw -t -e 8 --cache=writeback -x NAME -k SOCK IMAGE"),
    ServerSpec("nbdkit", tools=("nbdkit",), formats=("raw",), command=_nbdkit,
               version_argv=("nbdkit", "--version"),
               note="nbdkit -U SOCK -f file IMAGE"),
    ServerSpec("blockshot-daemon", tools=(), formats=("raw",), command=_blockshot_daemon,
               prepare=_blockshot_prepare, cwd=_blockshot_cwd, features=("daemon",),
               setup=_blockshot_daemon_setup,
               note="./blockshot daemon --control CTRL --nbd-socket SOCK --config CFG "
                    "(device 'disk' over IMAGE, exported as NAME)"),
    ServerSpec("blockshot-fuse", tools=(), formats=("raw",), command=_blockshot_fuse,
               prepare=_fuse_prepare(_blockshot_prepare), cwd=_blockshot_cwd, features=("fuse",),
               ready=fuse_mounts.mounted_with_own_loop, attach=fuse_mounts.find_own_loop,
               note="./blockshot serve IMAGE -f raw --fuse MNT --loop (fio on its /dev/loopN)"),
    ServerSpec("qsd-fuse", tools=("qemu-storage-daemon",), formats=("raw",), command=_qsd_fuse,
               version_argv=("qemu-storage-daemon", "--version"), prepare=_fuse_prepare(None),
               features=("fuse",), setup=fuse_mounts.create_mountpoint, ready=fuse_mounts.mounted,
               attach=fuse_mounts.attach_losetup,
               note="qemu-storage-daemon --blockdev file,f --blockdev raw,r --export type=fuse,"
                    "mountpoint=MNT,writable=on; losetup --find --show --direct-io=on MNT"),
    ServerSpec("blockshot-snap", tools=(), formats=("snapraw",), command=_blockshot_daemon,
               prepare=_blockshot_prepare, cwd=_blockshot_cwd, features=("snapshot",),
               setup=_blockshot_snap_setup,
               note="./blockshot daemon --control CTRL --nbd-socket SOCK --config CFG (device 'disk' over IMAGE); "
                    "snapshot.create --storage file:PATH --chunk-size 64K per job"),
    ServerSpec("blockshot-cbt", tools=(), formats=("cbtraw",), command=_blockshot_daemon,
               prepare=_blockshot_prepare, cwd=_blockshot_cwd, features=("cbt",), setup=_blockshot_cbt_setup,
               note="./blockshot daemon --control CTRL --nbd-socket SOCK --config CFG (devices 'disk' and 'plain' "
                    "over two copies of IMAGE, exported as NAME and 'plain'); cbt attach disk once it is up"),
    ServerSpec("qsd-snap", tools=("qemu-storage-daemon", "qemu-img"), formats=("snapraw",), command=_no_process,
               version_argv=("qemu-storage-daemon", "--version"), features=("snapshot",), process=False,
               note="qemu-storage-daemon copy-before-write + snapshot-access over IMAGE, fresh qcow2 fleecing "
                    "target per job (started by the row; PEERS.md)"),
    ServerSpec("qemu-img", tools=("qemu-img",), formats=("raw", "qcow2", "compressible"), command=_no_process,
               version_argv=("qemu-img", "--version"), features=("convert", "image-convert"), process=False,
               note="qemu-img convert [-c] -f FMT -O FMT IMAGE TARGET (run per job; no server)"),
    ServerSpec("blockshot-image", tools=(), formats=("raw", "qcow2", "compressible"), command=_no_process,
               prepare=_blockshot_prepare, cwd=_blockshot_cwd, features=("image-convert",), process=False,
               note="./blockshot image convert [-c] -f FMT -O FMT IMAGE TARGET (run per job; no server)"),
]

BY_NAME = {s.name: s for s in SERVERS}
BASELINE = "blockshot"


def default_names(rows):
    """The servers a run measures when --servers is not given: every one that can run a chosen row."""
    return [s.name for s in SERVERS if any(s.supports(r) for r in rows)]


def prepare(spec, opts, cmdlog):
    """Check that a server can run here; for peers, that their tools exist and report a version."""
    for tool in spec.tools:
        if shutil.which(tool) is None:
            return Prepared(False, f"'{tool}' is not installed or not on PATH")
    if spec.prepare is not None:
        return spec.prepare(spec, opts, cmdlog)
    version = ""
    if spec.version_argv:
        proc = cmdlog.run(list(spec.version_argv), f"{spec.name} version", timeout=30)
        if proc.returncode != 0:
            return Prepared(False, f"'{util.shell_join(spec.version_argv)}' failed: "
                                   f"{util.tail(proc.stderr, 3)}")
        version = proc.stdout.strip().splitlines()[0] if proc.stdout.strip() else ""
    return Prepared(True, version=version)
