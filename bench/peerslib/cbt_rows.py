"""Change-tracking overhead rows (tag 'cbt'): the same 4k random writes with and without tracking.

Server 'blockshot-cbt': one './blockshot daemon' with two devices over two identical copies of the image:
'disk' (exported as 'disk'), which the rows attach change tracking to on first use ('cbt.attach', default
64 KiB blocks, sidecar FILE.cbt beside the image, in the scratch directory), and 'plain' (exported as 'plain'),
never tracked. Every sample runs the same job on both devices, one after the other, tracked first in odd
rounds and untracked first in even rounds, and reports the ratio tracked/untracked of the two IOPS figures.

Why two devices rather than one device with tracking attached and detached: a write made while a device is
not tracked is, correctly, a foreign write to the tracker, so the next attach starts a new generation with an
empty (sparse) sidecar; the tracked job would then measure the first period of a generation, not the steady
state of a device that stays tracked.

Rows (every measured job is fio 4k random writes at queue depth 32 over the nbd engine):
- cbt-randwrite-marked-4k-qd32: every block already marked in the current period. Before each job, a
  sequential 1M write pass over the region (the first min(1 GiB, SIZE)) on that device, not measured; then
  --runtime seconds of random writes over the region. Target: tracked/untracked at least 0.97.
- cbt-randwrite-fresh-4k-qd32: first writes to blocks not marked in the current period (the durable-mark
  path: the block's mark reaches the sidecar and its fdatasync before the write is issued, many marks
  sharing one commit). Before each job a snapshot with memory storage is taken and destroyed on that device
  (for the tracked device the take starts a new period, so every block is fresh again); then a fixed number
  of writes, one per 4 tracking blocks of the device (SIZE/256K), at the same random offsets every time
  (--randrepeat=1); about 88% of them are first writes to their block (the rest hit a block an earlier write
  of the job marked); the tracked job's share is read back from 'cbt.info' (changed-in-period). Target:
  tracked/untracked at least 0.85.

When the tracked device is attached, the whole device is marked once ('cbt.mark-dirty'), so every sidecar
page is allocated, as on a device tracked for more than one period; otherwise the first fresh job would also
pay for allocating the sidecar's blocks. The daemon's CPU time during each job is recorded per write.
"""

import os
import time

from . import fio, procs, util
from .control import Control, ControlError
from .images import KINDS, ImageKind, make_raw_base
from .scenarios import IOPS, P50, P99, JobError, Metric, Sample, Scenario, run_fio
from .servers import TRACKED_DEVICE, UNTRACKED_DEVICE

TRACK_BLOCK = 64 << 10
REGION_MAX = 1 << 30              # the marked row works on the first min(1 GiB, size)
FRESH_BLOCKS_PER_WRITE = 4        # the fresh row: one write per 4 tracking blocks of the device

RATIO = Metric("tracked_over_untracked", "x")                                    # IOPS tracked / untracked
UNTRACKED_IOPS = Metric("untracked_iops", "IOPS")
UNTRACKED_P50 = Metric("clat_untracked_p50_us", "us", higher_is_better=False)
UNTRACKED_P99 = Metric("clat_untracked_p99_us", "us", higher_is_better=False)
CPU_PER_WRITE = Metric("cpu_us_per_write", "us", higher_is_better=False)         # daemon CPU, tracked job
UNTRACKED_CPU_PER_WRITE = Metric("untracked_cpu_us_per_write", "us", higher_is_better=False)
FIRST_WRITE_SHARE = Metric("first_write_share", "x")                             # fresh row: first writes / writes

KINDS["cbtraw"] = ImageKind("cbtraw", ".cbt-bench.raw", make_raw_base)

_attached = set()                 # control sockets whose 'disk' is tracked and primed


def region_size(size):
    return min(REGION_MAX, size)


def fresh_writes(size):
    return max(256, size // TRACK_BLOCK // FRESH_BLOCKS_PER_WRITE)


def tracked_first(round_number):
    """Odd rounds run the tracked device first, even rounds the untracked one."""
    return round_number % 2 == 1


def device_uri(ep, device):
    return ep.uri if device == TRACKED_DEVICE else f"nbd+unix:///{device}?socket={ep.socket}"


def timed_writes_argv(uri, name, region, runtime):
    return fio.nbd_argv(uri, name=name, rw="randwrite", bs="4k", iodepth=32, size=region, runtime=runtime)


def counted_writes_argv(uri, name, size, writes):
    """A fixed number of 4k random writes over the whole device, the same offsets every time."""
    return ["fio", f"--name={name}", "--ioengine=nbd", f"--uri={uri}", "--rw=randwrite", "--bs=4k",
            "--iodepth=32", f"--size={size}", f"--io_size={writes * 4096}", "--randrepeat=1", "--numjobs=1",
            "--output-format=json"]


def fill_argv(uri, region):
    """The unmeasured sequential pass that marks every block of the region."""
    return ["fio", "--name=fill", "--ioengine=nbd", f"--uri={uri}", "--rw=write", "--bs=1M", "--iodepth=8",
            f"--size={region}", "--numjobs=1", "--output-format=json"]


# -- the daemon ------------------------------------------------------------------------------------------

def _call(ctx, ep, method, params, purpose):
    ctx.cmdlog.note([method, str(params)], f"{purpose} (control socket of {ep.server})")
    try:
        with Control(ep.control, timeout=ctx.timeout + 600) as control:
            return control.call(method, params)
    except (OSError, ControlError) as exc:
        raise JobError(f"{method}: {exc}") from exc


def _ensure_tracked(ctx, ep):
    """Attaches tracking to 'disk' once per daemon and marks every block, so every sidecar page exists."""
    if ep.control in _attached:
        return
    info = _call(ctx, ep, "cbt.attach", {"device": TRACKED_DEVICE, "block-size": TRACK_BLOCK}, "track the device")
    _call(ctx, ep, "cbt.mark-dirty", {"device": TRACKED_DEVICE, "offset": 0, "length": ctx.size},
          "allocate every sidecar page")
    util.info(f"tracking attached to {TRACKED_DEVICE}: generation {info.get('generation')}, "
              f"sidecar {info.get('sidecar')}")
    _attached.add(ep.control)


def _daemon_pid(ctx, ep):
    return _call(ctx, ep, "daemon.info", None, "daemon pid")["pid"]


def _new_period(ctx, ep, device):
    """Take and destroy a memory snapshot of the device: for a tracked device the take starts a new period."""
    name = f"cbt-bench-{device}-{int(time.monotonic() * 1000)}"
    _call(ctx, ep, "snapshot.create", {"devices": [device], "name": name, "storage": "memory"},
          f"new period on {device}")
    _call(ctx, ep, "snapshot.destroy", {"name": name, "force": True}, f"destroy the period's snapshot on {device}")


def _fio(ctx, argv, purpose):
    return run_fio(ctx, argv, purpose, timeout=ctx.timeout + 600)["jobs"][0]


def _measured(ctx, pid, argv, purpose):
    """One measured fio job with the daemon's CPU time around it: (figures, fio job)."""
    os.sync()
    cpu0 = procs.cpu_seconds(pid)
    job = _fio(ctx, argv, purpose)
    cpu1 = procs.cpu_seconds(pid)
    writes = job["write"]["total_ios"]
    pct = fio.latency_percentiles_us(job, "write", (50.0, 99.0))
    cpu = (cpu1 - cpu0) * 1e6 / writes if cpu0 is not None and cpu1 is not None and writes else None
    return {"iops": fio.iops(job, "write"), "p50": pct[50.0], "p99": pct[99.0], "cpu_us_per_write": cpu,
            "writes": writes}, job


def _both(ctx, ep, run_one):
    """Runs run_one(device) for both devices in this round's order; returns {device: result}."""
    _ensure_tracked(ctx, ep)
    order = ([TRACKED_DEVICE, UNTRACKED_DEVICE] if tracked_first(ctx.round)
             else [UNTRACKED_DEVICE, TRACKED_DEVICE])
    return order, {device: run_one(device) for device in order}


def _sample(order, results, argv, extra_metrics, raw):
    t, u = results[TRACKED_DEVICE][0], results[UNTRACKED_DEVICE][0]
    metrics = {RATIO.key: t["iops"] / u["iops"], IOPS.key: t["iops"], UNTRACKED_IOPS.key: u["iops"],
               P50.key: t["p50"], P99.key: t["p99"], UNTRACKED_P50.key: u["p50"], UNTRACKED_P99.key: u["p99"],
               CPU_PER_WRITE.key: t["cpu_us_per_write"], UNTRACKED_CPU_PER_WRITE.key: u["cpu_us_per_write"],
               **extra_metrics}
    raw = {"order": order, "tracked": t, "untracked": u, **raw,
           "fio_job": results[TRACKED_DEVICE][1], "untracked_fio_job": results[UNTRACKED_DEVICE][1]}
    return Sample(metrics, argv, raw)


# -- rows ------------------------------------------------------------------------------------------------

def _run_marked(scenario, ctx, ep):
    region = region_size(ctx.size)
    pid = _daemon_pid(ctx, ep)
    info = {}

    def run_one(device):
        uri = device_uri(ep, device)
        os.sync()
        _fio(ctx, fill_argv(uri, region), f"mark every block of the region on {device}")
        if device == TRACKED_DEVICE:
            info["after_fill"] = _call(ctx, ep, "cbt.info", {"device": device}, "blocks marked after the fill")
            marked = info["after_fill"]["changed-in-period"]
            if marked < region // TRACK_BLOCK:
                raise JobError(f"only {marked} blocks are marked in the period after the fill of "
                               f"{region // TRACK_BLOCK}")
        return _measured(ctx, pid, timed_writes_argv(uri, scenario.name, region, ctx.runtime),
                         f"{scenario.name} on {device}")

    order, results = _both(ctx, ep, run_one)
    argv = timed_writes_argv(ep.uri, scenario.name, region, ctx.runtime)
    return _sample(order, results, argv, {}, {"region": region, "cbt_info": info.get("after_fill")})


def _run_fresh(scenario, ctx, ep):
    writes = fresh_writes(ctx.size)
    pid = _daemon_pid(ctx, ep)
    info = {}

    def run_one(device):
        uri = device_uri(ep, device)
        _new_period(ctx, ep, device)
        if device == TRACKED_DEVICE:
            info["before"] = _call(ctx, ep, "cbt.info", {"device": device}, "the new period")
            if info["before"]["changed-in-period"] != 0:
                raise JobError(f"the new period {info['before']['period']} already has "
                               f"{info['before']['changed-in-period']} blocks marked")
        figures = _measured(ctx, pid, counted_writes_argv(uri, scenario.name, ctx.size, writes),
                            f"{scenario.name} on {device}")
        if device == TRACKED_DEVICE:
            info["after"] = _call(ctx, ep, "cbt.info", {"device": device}, "blocks first written in the job")
        return figures

    order, results = _both(ctx, ep, run_one)
    first = info["after"]["changed-in-period"]
    argv = counted_writes_argv(ep.uri, scenario.name, ctx.size, writes)
    return _sample(order, results, argv, {FIRST_WRITE_SHARE.key: first / writes},
                   {"writes": writes, "first_writes": first, "cbt_info_before": info["before"],
                    "cbt_info_after": info["after"]})


def _row(name, title, metrics, run):
    return Scenario(name, title, tuple(metrics), run, image="cbtraw", tags=("cbt",), tools=("fio",),
                    needs=("cbt",), baseline="blockshot-cbt")


_COMMON = (RATIO, IOPS, UNTRACKED_IOPS, P50, P99, UNTRACKED_P50, UNTRACKED_P99, CPU_PER_WRITE,
           UNTRACKED_CPU_PER_WRITE)

CBT_SCENARIOS = [
    _row("cbt-randwrite-marked-4k-qd32",
         "4k random writes qd32, every block already marked in the period: tracked / untracked IOPS",
         _COMMON, _run_marked),
    _row("cbt-randwrite-fresh-4k-qd32",
         "4k random writes qd32 right after a new period (durable first marks): tracked / untracked IOPS",
         _COMMON + (FIRST_WRITE_SHARE,), _run_fresh),
]
