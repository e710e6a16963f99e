"""Snapshot rows (tag 'snapshot'): Blockshot's copy-before-write snapshots vs qemu-storage-daemon fleecing.

Servers:
- 'blockshot-snap': './blockshot daemon' with device 'disk' over its copy of the image, exported as 'disk'
  (started once by the runner). Each job takes its own snapshot ('snapshot.create', 'file:' storage in the
  scratch directory, 64 KiB chunks) and destroys it at the end; the plain figures are taken on the same
  device with no snapshot (no copy-before-write filter in its stack).
- 'qsd-snap': qemu-storage-daemon, started by the row for every job (a fresh snapshot is a fresh fleecing
  target): copy-before-write over the image with a new qcow2 fleecing target (default 64 KiB clusters, so
  the same chunk size) in the scratch directory, and snapshot-access over it (PEERS.md). Its plain figures
  come from a second qemu-storage-daemon exporting the image alone.

Rows (every fio job is 4k random writes at queue depth 32 over the nbd engine unless said otherwise):
- snap-randwrite-fresh-4k-qd32: right after the take, a fixed number of writes (one per 8 chunks of the
  device, same offsets for both servers: --randrepeat=1), so nearly every write lands in a chunk not yet
  copied and copies it. IOPS over the whole job; plain IOPS of the same writes beside it.
- snap-randwrite-copied-4k-qd32: the same once every chunk of the first REGION is copied (a sequential
  1M overwrite of the region after the take, not measured), time based over the region; the plain run
  (no snapshot) on the same region gives ours vs ours without a snapshot.
- snap-read-nbdcopy: take, overwrite the first REGION (so a quarter of the reads come from the
  difference storage, the rest from the origin), then 'nbdcopy SNAPSHOT-URI null:' of the whole device.
- snap-slowstore-randwrite-4k-qd32: difference storage behind a 20 MiB/s throttle, as in
  snap-randwrite-fresh (fixed writes, each copying a chunk). Blockshot: tiered:512M in front of a file on an
  ext4 file system made on a throttled device of the same daemon ('throttle' filter, bps=20M), exported over
  FUSE with a loop device; that loop device's dirty page cache is capped (bdi strict_limit, 4 MiB
  max_bytes) so the page cache cannot hide the throttle. qemu-storage-daemon: its throttle group
  (bps-total 20 MiB/s) on the fleecing target's file node. Figure: p99 completion latency with the
  snapshot, with the plain p99 and their ratio beside it.
"""

import os
import time

from . import fio, procs, util
from .control import Control, ControlError
from .images import KINDS, ImageKind, make_raw_base
from .scenarios import IOPS, MBPS, P50, P99, JobError, Metric, Sample, Scenario, run_fio

CHUNK = 64 << 10
REGION_MAX = 1 << 30            # the copied-chunks rows work on the first min(1 GiB, size/4)
FRESH_WRITES_PER_CHUNK = 8      # snap-randwrite-fresh: one write per 8 chunks of the device
SLOW_WRITES = 4096              # snap-slowstore: 4096 writes, 256 MiB of copies (RAM tier: 512 MiB)
SLOW_RAM = "512M"
SLOW_BPS = 20 << 20             # 20 MiB/s, the throttle on both sides
SLOW_STORE_SIZE = 1 << 30
SLOW_DIRTY_BYTES = 4 << 20
DEVICE = "disk"

PLAIN_IOPS = Metric("plain_iops", "IOPS")
PLAIN_P99 = Metric("plain_clat_p99_us", "us", higher_is_better=False)
SNAP_OVER_PLAIN = Metric("snap_over_plain", "x")                                  # IOPS with / without
P99_OVER_PLAIN = Metric("p99_over_plain", "x", higher_is_better=False)           # p99 with / without

KINDS["snapraw"] = ImageKind("snapraw", ".snap.raw", make_raw_base)


def region_size(size):
    return min(REGION_MAX, size // 4)


def fresh_writes(size):
    return max(256, size // CHUNK // FRESH_WRITES_PER_CHUNK)


# -- fio -------------------------------------------------------------------------------------------

def _fio(ctx, argv, purpose):
    return run_fio(ctx, argv, purpose, timeout=ctx.timeout + 600)["jobs"][0]


def counted_writes_argv(uri, name, size, writes):
    """A fixed number of 4k random writes over the whole device, the same offsets every time."""
    return ["fio", f"--name={name}", "--ioengine=nbd", f"--uri={uri}", "--rw=randwrite", "--bs=4k",
            "--iodepth=32", f"--size={size}", f"--io_size={writes * 4096}", "--randrepeat=1", "--numjobs=1",
            "--output-format=json"]


def timed_writes_argv(uri, name, region, runtime):
    return fio.nbd_argv(uri, name=name, rw="randwrite", bs="4k", iodepth=32, size=region, runtime=runtime)


def overwrite_argv(uri, name, region):
    """The unmeasured sequential pass that makes every chunk of the region copied."""
    return ["fio", f"--name={name}", "--ioengine=nbd", f"--uri={uri}", "--rw=write", "--bs=1M", "--iodepth=8",
            f"--size={region}", "--numjobs=1", "--output-format=json"]


def _write_figures(job):
    pct = fio.latency_percentiles_us(job, "write", (50.0, 99.0))
    return {"iops": fio.iops(job, "write"), "p50": pct[50.0], "p99": pct[99.0]}


# -- Blockshot: one long-lived daemon, a snapshot per job -----------------------------------------------

class _OurSnapshot:
    """A snapshot of the daemon's device for one job; destroyed (and its storage deleted) on exit."""

    def __init__(self, ctx, ep, tag, storage):
        self.ctx, self.ep, self.storage = ctx, ep, storage
        self.name = f"bench-{tag}-{int(time.monotonic() * 1000)}"
        self.control = _connect(ep, ctx)
        self.info = None

    def __enter__(self):
        argv = ["snapshot.create", DEVICE, self.name, self.storage]
        self.ctx.cmdlog.note(argv, f"take a snapshot on {self.ep.server} (control socket)")
        try:
            self.info = self.control.call("snapshot.create", {"devices": [DEVICE], "name": self.name,
                                                               "storage": self.storage, "chunk-size": CHUNK})
        except (OSError, ControlError) as exc:
            self.control.close()
            raise JobError(f"snapshot.create: {exc}") from exc
        return self

    def export_uri(self):
        info = self.control.call("snapshot.export", {"name": self.name, "device": DEVICE, "read-only": True})
        return info["uri"]

    def member(self):
        return self.control.call("snapshot.info", {"name": self.name})["devices"][0]

    def __exit__(self, *exc):
        try:
            self.control.call("snapshot.destroy", {"name": self.name, "force": True})
        except (OSError, ControlError) as e:
            util.warn(f"destroying snapshot {self.name}: {e}")
        finally:
            self.control.close()
        return False


def _connect(ep, ctx):
    try:
        return Control(ep.control, timeout=ctx.timeout + 600)
    except OSError as exc:
        raise JobError(f"cannot reach the daemon's control socket {ep.control!r}: {exc}") from exc


def _our_store(ep, tag):
    path = os.path.join(os.path.dirname(ep.image), f"store-{tag}.bin")
    if os.path.exists(path):
        os.unlink(path)
    return path


# -- qemu-storage-daemon: a process per measurement ------------------------------------------------------

def qsd_argv(image, sock, fleece=None, throttle_bps=0):
    """Plain (image alone, export 'live') or with copy-before-write + snapshot-access (exports 'live', 'snap')."""
    argv = ["qemu-storage-daemon"]
    if fleece and throttle_bps:
        argv += ["--object", f"throttle-group,id=tg0,x-bps-total={throttle_bps}"]
    argv += ["--blockdev", f"driver=file,node-name=disk0,filename={image}"]
    live = "disk0"
    if fleece:
        argv += ["--blockdev", f"driver=file,node-name=ft,filename={fleece}"]
        target = "ft"
        if throttle_bps:
            argv += ["--blockdev", "driver=throttle,node-name=thr,throttle-group=tg0,file=ft"]
            target = "thr"
        argv += ["--blockdev", f"driver=qcow2,node-name=fleece,file={target}",
                 "--blockdev", "driver=copy-before-write,node-name=cbw,file=disk0,target=fleece",
                 "--blockdev", "driver=snapshot-access,node-name=snap,file=cbw"]
        live = "cbw"
    argv += ["--nbd-server", f"addr.type=unix,addr.path={sock}",
             "--export", f"type=nbd,id=live,node-name={live},name=live,writable=on"]
    if fleece:
        argv += ["--export", "type=nbd,id=snap,node-name=snap,name=snap"]
    return argv


class _Qsd:
    """qemu-storage-daemon for one measurement: plain, or with a fresh fleecing target."""

    def __init__(self, ctx, ep, snapshot, throttle_bps=0):
        workdir = os.path.dirname(ep.image)
        self.ctx = ctx
        self.sock = os.path.join(workdir, "qsd-snap-job.sock")
        self.fleece = os.path.join(workdir, "qsd-fleece.qcow2") if snapshot else None
        self.argv = qsd_argv(ep.image, self.sock, self.fleece, throttle_bps)
        self.server = procs.ServerProcess("qemu-storage-daemon", self.argv, self.sock,
                                          os.path.join(workdir, "qsd-snap-job.log"))
        self.size = ctx.size

    def uri(self, name="live"):
        return f"nbd+unix:///{name}?socket={self.sock}"

    def fleece_bytes(self):
        return os.stat(self.fleece).st_blocks * 512 if self.fleece and os.path.exists(self.fleece) else 0

    def __enter__(self):
        if self.fleece:
            if os.path.exists(self.fleece):
                os.unlink(self.fleece)
            proc = self.ctx.cmdlog.run(["qemu-img", "create", "-q", "-f", "qcow2", self.fleece, str(self.size)],
                                       "fresh fleecing target")
            if proc.returncode != 0:
                raise JobError(f"qemu-img create failed: {proc.stderr.strip()}")
        try:
            self.server.start(self.ctx.cmdlog, self.ctx.start_timeout)
        except procs.ServerStartError as exc:
            self.server.stop()
            raise JobError(f"qemu-storage-daemon did not start: {exc}") from exc
        return self

    def __exit__(self, *exc):
        alive = self.server.alive()
        self.server.stop()
        if self.fleece and os.path.exists(self.fleece):
            os.unlink(self.fleece)
        if not alive and exc[0] is None:
            raise JobError(f"qemu-storage-daemon exited during the job; log:\n{self.server.log_tail()}")
        return False


def _is_qsd(ep):
    return ep.server.startswith("qsd")


# -- rows --------------------------------------------------------------------------------------------------

def _run_fresh(scenario, ctx, ep):
    writes = fresh_writes(ctx.size)
    if _is_qsd(ep):
        with _Qsd(ctx, ep, snapshot=False) as q:
            plain = _fio(ctx, counted_writes_argv(q.uri(), scenario.name, ctx.size, writes), "plain writes (qsd)")
        with _Qsd(ctx, ep, snapshot=True) as q:
            argv = counted_writes_argv(q.uri(), scenario.name, ctx.size, writes)
            job = _fio(ctx, argv, f"{scenario.name} on {ep.server}")
            copied = q.fleece_bytes() // CHUNK
    else:
        plain = _fio(ctx, counted_writes_argv(ep.uri, scenario.name, ctx.size, writes), "plain writes (blockshot)")
        with _OurSnapshot(ctx, ep, "fresh", "file:" + _our_store(ep, "fresh")) as snap:
            argv = counted_writes_argv(ep.uri, scenario.name, ctx.size, writes)
            job = _fio(ctx, argv, f"{scenario.name} on {ep.server}")
            copied = snap.member()["copied-chunks"]
    w, p = _write_figures(job), _write_figures(plain)
    return Sample({IOPS.key: w["iops"], P50.key: w["p50"], P99.key: w["p99"], PLAIN_IOPS.key: p["iops"],
                   SNAP_OVER_PLAIN.key: w["iops"] / p["iops"]}, argv,
                  {"writes": writes, "chunks_copied_approx": copied, "fio_job": job, "plain_fio_job": plain})


def _run_copied(scenario, ctx, ep):
    region = region_size(ctx.size)
    if _is_qsd(ep):
        with _Qsd(ctx, ep, snapshot=False) as q:
            plain = _fio(ctx, timed_writes_argv(q.uri(), scenario.name, region, ctx.runtime), "plain writes (qsd)")
        with _Qsd(ctx, ep, snapshot=True) as q:
            _fio(ctx, overwrite_argv(q.uri(), "precopy", region), "copy every chunk of the region (qsd)")
            argv = timed_writes_argv(q.uri(), scenario.name, region, ctx.runtime)
            job = _fio(ctx, argv, f"{scenario.name} on {ep.server}")
    else:
        plain = _fio(ctx, timed_writes_argv(ep.uri, scenario.name, region, ctx.runtime), "plain writes (blockshot)")
        with _OurSnapshot(ctx, ep, "copied", "file:" + _our_store(ep, "copied")):
            _fio(ctx, overwrite_argv(ep.uri, "precopy", region), "copy every chunk of the region (blockshot)")
            argv = timed_writes_argv(ep.uri, scenario.name, region, ctx.runtime)
            job = _fio(ctx, argv, f"{scenario.name} on {ep.server}")
    w, p = _write_figures(job), _write_figures(plain)
    return Sample({IOPS.key: w["iops"], PLAIN_IOPS.key: p["iops"], SNAP_OVER_PLAIN.key: w["iops"] / p["iops"],
                   P50.key: w["p50"], P99.key: w["p99"]}, argv,
                  {"region": region, "fio_job": job, "plain_fio_job": plain})


def _nbdcopy(ctx, uri, purpose):
    argv = ["nbdcopy", uri, "null:"]
    start = time.perf_counter()
    proc = ctx.cmdlog.run(argv, purpose, timeout=ctx.timeout + 600)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise JobError(f"nbdcopy exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return argv, elapsed


def _run_read(scenario, ctx, ep):
    region = region_size(ctx.size)
    if _is_qsd(ep):
        with _Qsd(ctx, ep, snapshot=True) as q:
            _fio(ctx, overwrite_argv(q.uri(), "overwrite", region), "overwrite a quarter after the take (qsd)")
            argv, elapsed = _nbdcopy(ctx, q.uri("snap"), f"{scenario.name} on {ep.server}")
    else:
        with _OurSnapshot(ctx, ep, "read", "file:" + _our_store(ep, "read")) as snap:
            _fio(ctx, overwrite_argv(ep.uri, "overwrite", region), "overwrite a quarter after the take (blockshot)")
            argv, elapsed = _nbdcopy(ctx, snap.export_uri(), f"{scenario.name} on {ep.server}")
    return Sample({MBPS.key: ctx.size / elapsed / 1e6}, argv, {"elapsed_s": round(elapsed, 6), "overwritten": region})


# -- the throttled slow store (Blockshot side) -------------------------------------------------------------

def _bdi_dir(device):
    st = os.stat(device)
    return f"/sys/class/bdi/{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"


class _SlowStore:
    """A file system on a throttled device of the same daemon, seen through FUSE and a loop device."""

    def __init__(self, ctx, ep):
        self.ctx, self.ep = ctx, ep
        workdir = os.path.dirname(ep.image)
        self.raw = os.path.join(workdir, "slow-store.raw")
        self.fuse = os.path.join(workdir, "slow-store.img")
        self.mnt = os.path.join(workdir, "slow-mnt")
        self.loop = None
        self.bdi_saved = None
        self.mounted = False
        self.control = _connect(ep, ctx)
        self.steps = []

    def _call(self, method, params):
        self.ctx.cmdlog.note([method, str(params)], f"slow store on {self.ep.server} (control socket)")
        return self.control.call(method, params)

    def _run(self, argv, purpose):
        proc = self.ctx.cmdlog.run(argv, purpose, timeout=300)
        if proc.returncode != 0:
            raise JobError(f"{argv[0]} failed: {proc.stderr.strip()[-300:]}")

    def __enter__(self):
        try:
            with open(self.raw, "wb") as f:
                f.truncate(SLOW_STORE_SIZE)
            self.steps.append(lambda: os.unlink(self.raw))
            self._call("device.add", {"name": "slow", "file": self.raw, "format": "raw"})
            self.steps.append(lambda: self._call("device.remove", {"name": "slow", "force": True}))
            self._call("filter.insert", {"device": "slow", "type": "throttle", "settings": {"bps": SLOW_BPS}})
            info = self._call("export.add", {"device": "slow", "type": "fuse", "name": "slow", "path": self.fuse,
                                             "loop": True})
            self.steps.append(lambda: self._call("export.remove", {"name": "slow"}))
            self.loop = info["loop-device"]
            bdi = _bdi_dir(self.loop)
            self.bdi_saved = {k: open(f"{bdi}/{k}").read().strip() for k in ("max_ratio", "strict_limit")}
            self.steps.append(self._restore_bdi)
            with open(f"{bdi}/strict_limit", "w") as f:
                f.write("1")
            with open(f"{bdi}/max_bytes", "w") as f:
                f.write(str(SLOW_DIRTY_BYTES))
            self._run(["mkfs.ext4", "-q", "-F", "-E", "nodiscard,lazy_itable_init=1,lazy_journal_init=1", self.loop],
                      "file system on the throttled store device")
            os.makedirs(self.mnt, exist_ok=True)
            self._run(["mount", self.loop, self.mnt], "mount the throttled store")
            self.steps.append(lambda: self._run(["umount", self.mnt], "unmount the throttled store"))
        except (OSError, ControlError, KeyError) as exc:
            self.__exit__(None, None, None)
            raise JobError(f"setting up the throttled store: {exc}") from exc
        return self

    def store_path(self):
        return os.path.join(self.mnt, "store.bin")

    def _restore_bdi(self):
        bdi = _bdi_dir(self.loop)
        with open(f"{bdi}/max_ratio", "w") as f:
            f.write(self.bdi_saved["max_ratio"])
        with open(f"{bdi}/strict_limit", "w") as f:
            f.write(self.bdi_saved["strict_limit"])

    def __exit__(self, *exc):
        while self.steps:
            step = self.steps.pop()
            try:
                step()
            except (OSError, ControlError, JobError) as e:
                util.warn(f"tearing down the throttled store: {e}")
        self.control.close()
        return False


def _run_slow(scenario, ctx, ep):
    writes = SLOW_WRITES
    if _is_qsd(ep):
        with _Qsd(ctx, ep, snapshot=False) as q:
            plain = _fio(ctx, counted_writes_argv(q.uri(), scenario.name, ctx.size, writes), "plain writes (qsd)")
        with _Qsd(ctx, ep, snapshot=True, throttle_bps=SLOW_BPS) as q:
            argv = counted_writes_argv(q.uri(), scenario.name, ctx.size, writes)
            job = _fio(ctx, argv, f"{scenario.name} on {ep.server}")
        storage = f"throttle-group x-bps-total={SLOW_BPS} on the fleecing target"
    else:
        plain = _fio(ctx, counted_writes_argv(ep.uri, scenario.name, ctx.size, writes), "plain writes (blockshot)")
        with _SlowStore(ctx, ep) as slow:
            storage = f"tiered:{SLOW_RAM},file:{slow.store_path()}"
            with _OurSnapshot(ctx, ep, "slow", storage):
                argv = counted_writes_argv(ep.uri, scenario.name, ctx.size, writes)
                job = _fio(ctx, argv, f"{scenario.name} on {ep.server}")
    w, p = _write_figures(job), _write_figures(plain)
    return Sample({P99.key: w["p99"], PLAIN_P99.key: p["p99"], P99_OVER_PLAIN.key: w["p99"] / p["p99"],
                   IOPS.key: w["iops"], PLAIN_IOPS.key: p["iops"]}, argv,
                  {"writes": writes, "storage": storage, "fio_job": job, "plain_fio_job": plain})


def _row(name, title, metrics, run, tools=("fio",)):
    return Scenario(name, title, tuple(metrics), run, image="snapraw", tags=("snapshot",), tools=tools,
                    needs=("snapshot",), baseline="blockshot-snap")


SNAPSHOT_SCENARIOS = [
    _row("snap-randwrite-fresh-4k-qd32", "4k random writes right after the take: nearly every write copies a chunk",
         (IOPS, P50, P99, PLAIN_IOPS, SNAP_OVER_PLAIN), _run_fresh),
    _row("snap-randwrite-copied-4k-qd32", "4k random writes once every chunk of the region is copied",
         (IOPS, PLAIN_IOPS, SNAP_OVER_PLAIN, P50, P99), _run_copied),
    _row("snap-read-nbdcopy", "nbdcopy of the snapshot to null: (a quarter overwritten after the take)",
         (MBPS,), _run_read, tools=("fio", "nbdcopy")),
    _row("snap-slowstore-randwrite-4k-qd32", "4k random writes, each copying, difference storage behind 20 MiB/s",
         (P99, PLAIN_P99, P99_OVER_PLAIN, IOPS, PLAIN_IOPS), _run_slow, tools=("fio", "mkfs.ext4", "mount")),
]
