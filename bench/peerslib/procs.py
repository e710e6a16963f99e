"""Server processes: start, wait for the socket, find the real server pid, sample RSS/CPU, stop.

Every server runs in its own session (process group) so that teardown can signal exactly the
processes this harness started, and each direct child gets PR_SET_PDEATHSIG so it dies with the
harness even if the harness itself is killed with SIGKILL.
"""

import ctypes
import os
import signal
import socket
import struct
import subprocess
import threading
import time

from . import util

_PR_SET_PDEATHSIG = 1
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _die_with_parent():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except OSError:
        pass


class ServerStartError(Exception):
    pass


class ServerProcess:
    """One running server: the process we spawned, the pid that owns the listening socket."""

    def __init__(self, name, argv, socket_path, log_path, cwd=None, ready=None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.socket_path = str(socket_path)
        self.log_path = str(log_path)
        self.cwd = cwd
        self.popen = None
        self.server_pid = None      # the process holding the listening socket (RSS is read here)
        self.tree_pids = []         # every process in the server's tree at readiness
        self.startup_s = None
        self.ready = ready          # None: ready when the socket greets with NBD; else a callable
        self.before_stop = []       # undo steps run before the server is signalled (e.g. detach a loop device)
        self._log = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, cmdlog, timeout):
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        self._log = open(self.log_path, "w")
        cmdlog.note(self.argv, f"start {self.name}", self.cwd)
        begin = time.perf_counter()
        try:
            self.popen = subprocess.Popen(self.argv, cwd=self.cwd, stdin=subprocess.DEVNULL,
                                          stdout=self._log, stderr=subprocess.STDOUT,
                                          start_new_session=True, preexec_fn=_die_with_parent)
        except OSError as exc:
            raise ServerStartError(f"{self.name}: cannot execute {self.argv[0]}: {exc}") from exc
        self._wait_for_socket(timeout)
        self.startup_s = time.perf_counter() - begin
        self.tree_pids = process_tree(self.popen.pid)
        self.server_pid = find_socket_owner(self.tree_pids, self.socket_path) or self.popen.pid

    def _wait_for_socket(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            if self.popen.poll() is not None:
                raise ServerStartError(
                    f"{self.name} exited with status {self.popen.returncode} before its socket "
                    f"accepted connections; log {self.log_path}:\n{self.log_tail()}")
            if self.ready() if self.ready is not None else _accepts(self.socket_path):
                return
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"{self.name}: socket {self.socket_path} did not accept connections within "
                    f"{timeout} s; log {self.log_path}:\n{self.log_tail()}")
            time.sleep(0.05)

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def stop(self, grace=5.0):
        """SIGTERM the server's process group, SIGKILL it if it outlives grace; remove the socket.

        Returns once no process of the group is left (or after the SIGKILL wait ran out).
        """
        while self.before_stop:
            step = self.before_stop.pop()
            try:
                step()
            except (OSError, subprocess.SubprocessError) as exc:
                util.warn(f"{self.name}: cleanup before stopping failed: {exc}")
        if self.popen is not None:
            pgid = self.popen.pid   # start_new_session: the group id is the child's pid
            if not self._signal_group(pgid, signal.SIGTERM, grace):
                util.warn(f"{self.name} did not exit within {grace} s of SIGTERM; sending SIGKILL")
                if not self._signal_group(pgid, signal.SIGKILL, 5.0):
                    util.warn(f"{self.name}: process group {pgid} survived SIGKILL")
        if self._log is not None:
            self._log.close()
            self._log = None
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass

    def _signal_group(self, pgid, sig, timeout):
        """Signal the group; True once every member is gone (the leader reaped) within timeout."""
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            self.popen.poll()
            return True
        deadline = time.monotonic() + timeout
        while True:
            self.popen.poll()   # reap the leader so it does not linger as a zombie
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    def log_tail(self, lines=15):
        try:
            with open(self.log_path, errors="replace") as f:
                return util.tail(f.read(), lines)
        except OSError:
            return ""


NBD_MAGIC = b"NBDMAGIC"
IHAVEOPT = b"IHAVEOPT"
_NBD_FLAG_C_FIXED_NEWSTYLE = 1
_NBD_OPT_ABORT = 2


def _accepts(path):
    """True once the socket accepts a connection and greets with fixed-newstyle NBD.

    The probe then ends the handshake politely (NBD_OPT_ABORT) instead of hanging up mid-way, so
    servers do not log a failed negotiation for every probe. A server that accepts but does not
    speak NBD raises ServerStartError.
    """
    if not os.path.exists(path):
        return False
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(2.0)
        try:
            s.connect(path)
        except OSError:
            return False
        greeting = _recv_exact(s, 18)
        if greeting is None:
            return False   # closed or slow: not ready yet
        if greeting[:8] != NBD_MAGIC or greeting[8:16] != IHAVEOPT:
            raise ServerStartError(f"{path} accepted a connection but did not greet with "
                                   f"fixed-newstyle NBD (got {greeting!r})")
        try:
            s.sendall(struct.pack(">I", _NBD_FLAG_C_FIXED_NEWSTYLE)
                      + IHAVEOPT + struct.pack(">II", _NBD_OPT_ABORT, 0))
            _recv_exact(s, 20)   # the ACK to ABORT; servers may also just close
        except OSError:
            pass
        return True
    finally:
        s.close()


def _recv_exact(sock, n):
    data = b""
    try:
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
    except OSError:
        return None
    return data


# -- /proc helpers -----------------------------------------------------------------------------

def process_tree(root):
    """root and all its descendants (from /proc/*/stat parent links)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _read(f"/proc/{entry}/stat")
        if stat is None:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def find_socket_owner(pids, socket_path):
    """The pid among pids that holds the listening Unix socket bound to socket_path."""
    inodes = set()
    for line in (_read("/proc/net/unix") or "").splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[7] == socket_path:
            inodes.add(fields[6])
    targets = {f"socket:[{i}]" for i in inodes}
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") in targets:
                        return pid
                except OSError:
                    continue
        except OSError:
            continue
    return None


def rss_kib(pid):
    status = _read(f"/proc/{pid}/status")
    if status is None:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


def cpu_seconds(pid):
    """utime + stime of the whole process (all threads), in seconds."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def loadavg():
    text = _read("/proc/loadavg")
    return [float(x) for x in text.split()[:3]] if text else None


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


class ProcessSampler:
    """Samples a server's VmRSS while a job runs (peak over the job) and its CPU time used.

    Use as a context manager around the job; read .result afterwards.
    """

    def __init__(self, pid, interval=0.05):
        self.pid = pid
        self.interval = interval
        self.result = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._peak = None
        self._count = 0

    def __enter__(self):
        self._start_rss = rss_kib(self.pid)
        self._start_cpu = cpu_seconds(self.pid)
        self._start_wall = time.perf_counter()
        self._peak = self._start_rss
        self._thread.start()
        return self

    def _loop(self):
        while not self._stop.wait(self.interval):
            value = rss_kib(self.pid)
            if value is not None:
                self._count += 1
                if self._peak is None or value > self._peak:
                    self._peak = value

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        end_rss = rss_kib(self.pid)
        end_cpu = cpu_seconds(self.pid)
        if end_rss is not None and (self._peak is None or end_rss > self._peak):
            self._peak = end_rss
        wall = time.perf_counter() - self._start_wall
        cpu = None if end_cpu is None or self._start_cpu is None else end_cpu - self._start_cpu
        self.result = {
            "pid": self.pid,
            "rss_start_kib": self._start_rss,
            "rss_peak_kib": self._peak,
            "rss_end_kib": end_rss,
            "rss_samples": self._count,
            "cpu_s": None if cpu is None else round(cpu, 3),
            "wall_s": round(wall, 3),
        }
        return False
