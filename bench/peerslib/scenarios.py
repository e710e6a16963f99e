"""The benchmark rows, as data.

A scenario has a name, the image kind it runs on, the metrics it produces (the first is the row's
headline figure), tags for --scenarios selection, and a run function
    run(scenario, ctx, endpoint) -> Sample
that drives one job against one running server. fio_nbd() and nbdcopy_read() build the common kinds;
a new row is usually one line in SCENARIOS. Rows that need something else (a FUSE mount and fio
libaio, a qemu-img convert) write their own run function and, if needed, a new image kind.
"""

import time
from dataclasses import dataclass, field
from typing import Callable

from . import fio


@dataclass(frozen=True)
class Metric:
    key: str
    unit: str
    higher_is_better: bool = True


IOPS = Metric("iops", "IOPS")
MBPS = Metric("mb_s", "MB/s")
P50 = Metric("clat_p50_us", "us", higher_is_better=False)
P99 = Metric("clat_p99_us", "us", higher_is_better=False)


@dataclass
class Sample:
    metrics: dict                       # Metric.key -> value
    argv: list                          # the measured command
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RunContext:
    cmdlog: object
    size: int          # bytes
    runtime: int       # seconds per fio job
    ramp_time: int     # seconds of fio ramp (not measured)
    timeout: float     # seconds before a job is abandoned
    server_opts: dict = field(default_factory=dict)   # launcher path etc., for rows that start servers
    start_timeout: float = 60.0                       # seconds for such a server's socket to answer
    round: int = 1                                    # the round this job belongs to (1-based)


@dataclass(frozen=True)
class Endpoint:
    server: str
    uri: str
    socket: str
    name: str
    image: str = ""            # the server's own copy of the image
    control: str = ""          # the daemon's control socket (servers with the 'daemon' feature)
    device: str = ""           # a block device to run on (servers with the 'fuse' feature: /dev/loopN)


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    metrics: tuple
    run: Callable[["Scenario", RunContext, Endpoint], Sample]
    image: str = "raw"
    tags: tuple = ("foundation",)
    params: dict = field(default_factory=dict)
    tools: tuple = ()                   # executables the run function needs
    needs: tuple = ("nbd",)             # server features, any of which lets a server run the row
    baseline: str = ""                  # the server the row's ratios divide by ('' = --baseline)

    @property
    def headline(self):
        return self.metrics[0]


class JobError(Exception):
    pass


# -- fio via the nbd engine ----------------------------------------------------------------------

def run_fio(ctx, argv, purpose, timeout=None):
    """Runs one fio command and returns its parsed JSON output; a failure is the job's JobError."""
    proc = ctx.cmdlog.run(argv, purpose, timeout=ctx.timeout if timeout is None else timeout)
    if proc.returncode != 0:
        raise JobError(f"fio exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    try:
        return fio.parse_output(proc.stdout)
    except fio.FioError as exc:
        raise JobError(f"{exc}; stderr: {proc.stderr.strip()[-300:]}") from exc


def _run_fio_nbd(scenario, ctx, ep):
    p = scenario.params
    want_latency = [m for m in scenario.metrics if m in (P50, P99)]
    argv = fio.nbd_argv(ep.uri, name=scenario.name, rw=p["rw"], bs=p["bs"], iodepth=p["iodepth"],
                        size=ctx.size, runtime=ctx.runtime, ramp_time=ctx.ramp_time)
    doc = run_fio(ctx, argv, f"{scenario.name} on {ep.server}")
    job = doc["jobs"][0]
    dirn = fio.direction(p["rw"])
    metrics = {IOPS.key: fio.iops(job, dirn), MBPS.key: fio.mb_per_s(job, dirn)}
    if want_latency:
        pct = fio.latency_percentiles_us(job, dirn, (50.0, 99.0))
        metrics[P50.key] = pct[50.0]
        metrics[P99.key] = pct[99.0]
    metrics = {m.key: metrics[m.key] for m in scenario.metrics}
    return Sample(metrics, argv, {"fio_version": doc.get("fio version"), "fio_job": job})


def fio_nbd(name, title, *, rw, bs, iodepth, metrics, tags=("foundation",), image="raw"):
    return Scenario(name, title, tuple(metrics), _run_fio_nbd, image=image, tags=tuple(tags),
                    params={"rw": rw, "bs": bs, "iodepth": iodepth}, tools=("fio",))


# -- nbdcopy full read to null: -----------------------------------------------------------------

def _run_nbdcopy_read(scenario, ctx, ep):
    argv = ["nbdcopy", ep.uri, "null:"]
    start = time.perf_counter()
    proc = ctx.cmdlog.run(argv, f"{scenario.name} on {ep.server}", timeout=ctx.timeout)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise JobError(f"nbdcopy exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return Sample({MBPS.key: ctx.size / elapsed / 1e6}, argv, {"elapsed_s": round(elapsed, 6)})


def nbdcopy_read(name, title, *, tags=("foundation",), image="raw"):
    return Scenario(name, title, (MBPS,), _run_nbdcopy_read, image=image, tags=tuple(tags),
                    tools=("nbdcopy",))


# -- the rows -----------------------------------------------------------------------------------

SCENARIOS = [
    fio_nbd("randread-4k-qd32", "4k random read, queue depth 32",
            rw="randread", bs="4k", iodepth=32, metrics=(IOPS, P50, P99)),
    fio_nbd("randwrite-4k-qd32", "4k random write, queue depth 32",
            rw="randwrite", bs="4k", iodepth=32, metrics=(IOPS, P50, P99)),
    fio_nbd("seqread-1m-qd8", "1M sequential read, queue depth 8",
            rw="read", bs="1M", iodepth=8, metrics=(MBPS,)),
    fio_nbd("seqwrite-1m-qd8", "1M sequential write, queue depth 8",
            rw="write", bs="1M", iodepth=8, metrics=(MBPS,)),
    nbdcopy_read("nbdcopy-read", "nbdcopy of the whole export to null:"),
]

# Rows that need the daemon (and the qemu-img peer) live in their own module.
from .daemon_rows import DAEMON_SCENARIOS  # noqa: E402

SCENARIOS += DAEMON_SCENARIOS

# Rows on a loop device over a FUSE file export (Blockshot vs qemu-storage-daemon).
from .fuse_rows import FUSE_SCENARIOS  # noqa: E402

SCENARIOS += FUSE_SCENARIOS

# The qcow2 rows (serving and converting qcow2 images) live in their own module too.
from .qcow2_rows import QCOW2_SCENARIOS  # noqa: E402

SCENARIOS += QCOW2_SCENARIOS

# The snapshot rows (copy-before-write: Blockshot's daemon vs qemu-storage-daemon fleecing).
from .snapshot_rows import SNAPSHOT_SCENARIOS  # noqa: E402

SCENARIOS += SNAPSHOT_SCENARIOS

# The change-tracking overhead rows (a tracked and an untracked device of one daemon).
from .cbt_rows import CBT_SCENARIOS  # noqa: E402

SCENARIOS += CBT_SCENARIOS

BY_NAME = {s.name: s for s in SCENARIOS}


def select(spec):
    """--scenarios: comma-separated names and/or tags ('foundation', 'daemon', 'qcow2', 'all'); keeps table order."""
    wanted = [w.strip() for w in spec.split(",") if w.strip()]
    chosen = []
    for w in wanted:
        matches = [s for s in SCENARIOS if w == "all" or w == s.name or w in s.tags]
        if not matches:
            raise ValueError(f"unknown scenario or tag {w!r}; known: "
                             + ", ".join([s.name for s in SCENARIOS] + sorted(all_tags())))
        chosen.extend(m for m in matches if m not in chosen)
    return [s for s in SCENARIOS if s in chosen]


def all_tags():
    return {t for s in SCENARIOS for t in s.tags} | {"all"}
