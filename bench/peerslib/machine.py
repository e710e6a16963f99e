"""Facts recorded with every run: machine, kernel, tool versions, git commit, work filesystem."""

import os
import platform
import shutil
import subprocess

from . import procs

TOOLS = {
    "fio": ["fio", "--version"],
    "nbdcopy": ["nbdcopy", "--version"],
    "nbdinfo": ["nbdinfo", "--version"],
    "qemu-nbd": ["qemu-nbd", "--version"],
    "qemu-img": ["qemu-img", "--version"],
    "nbdkit": ["nbdkit", "--version"],
}


def _first_line(argv):
    if shutil.which(argv[0]) is None:
        return None
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (proc.stdout or proc.stderr).strip()
    return text.splitlines()[0] if text else None


def tool_versions():
    return {name: _first_line(argv) for name, argv in TOOLS.items()}


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def machine_info():
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), None)
    mem = next((int(line.split()[1]) for line in _read("/proc/meminfo").splitlines()
                if line.startswith("MemTotal:")), None)
    distro = next((line.split("=", 1)[1].strip('"')
                   for line in _read("/etc/os-release").splitlines()
                   if line.startswith("PRETTY_NAME=")), None)
    return {
        "hostname": platform.node(),
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": cpu,
        "mem_total_kib": mem,
        "kernel": platform.release(),
        "uname": " ".join(platform.uname()),
        "distro": distro,
        "python": platform.python_version(),
        "loadavg": procs.loadavg(),
    }


def filesystem_of(path):
    """(mount point, fs type, device) of the mount holding path, from /proc/self/mounts."""
    path = os.path.realpath(path)
    best = ("/", None, None)
    for line in _read("/proc/self/mounts").splitlines():
        dev, mnt, fstype = line.split()[:3]
        mnt = mnt.replace("\\040", " ")
        if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best[0]):
            best = (mnt, fstype, dev)
    return {"mount": best[0], "fstype": best[1], "device": best[2]}


def git_info(repo_root):
    def git(*args):
        try:
            proc = subprocess.run(["git", "-C", repo_root, *args], capture_output=True, text=True,
                                  timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    status = git("status", "--porcelain")
    return {
        "commit": git("rev-parse", "HEAD"),
        "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
        "describe": git("describe", "--always", "--dirty"),
        "dirty": None if status is None else bool(status),
    }
