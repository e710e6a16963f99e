"""Rows on a loop device over a FUSE file export: Blockshot ('blockshot-fuse') vs qemu-storage-daemon ('qsd-fuse').

Each server mounts its own copy of the image as a regular file (fuse_mounts.py) with a loop device on it;
fio runs on the loop device with libaio and O_DIRECT, so every request goes loop device -> FUSE -> the
server -> the image file (which the servers open buffered: both read from the page cache, as the NBD rows
do). The ratio is blockshot-fuse/qsd-fuse.
"""

from . import fio
from .scenarios import IOPS, MBPS, P50, P99, JobError, Sample, Scenario, run_fio


def _run_fio_device(scenario, ctx, ep):
    if not ep.device:
        raise JobError(f"{ep.server} has no block device to run on")
    p = scenario.params
    argv = fio.device_argv(ep.device, name=scenario.name, rw=p["rw"], bs=p["bs"], iodepth=p["iodepth"],
                           size=ctx.size, runtime=ctx.runtime, ramp_time=ctx.ramp_time)
    doc = run_fio(ctx, argv, f"{scenario.name} on {ep.server} ({ep.device})")
    job = doc["jobs"][0]
    dirn = fio.direction(p["rw"])
    metrics = {IOPS.key: fio.iops(job, dirn), MBPS.key: fio.mb_per_s(job, dirn)}
    if P50 in scenario.metrics:
        pct = fio.latency_percentiles_us(job, dirn, (50.0, 99.0))
        metrics[P50.key] = pct[50.0]
        metrics[P99.key] = pct[99.0]
    return Sample({m.key: metrics[m.key] for m in scenario.metrics}, argv,
                  {"fio_version": doc.get("fio version"), "device": ep.device, "fio_job": job})


def fio_loop(name, title, *, rw, bs, iodepth, metrics):
    return Scenario(name, title, tuple(metrics), _run_fio_device, tags=("fuse",), tools=("fio",),
                    needs=("fuse",), baseline="blockshot-fuse",
                    params={"rw": rw, "bs": bs, "iodepth": iodepth})


FUSE_SCENARIOS = [
    fio_loop("fuse-randread-4k-qd32", "FUSE + loop: 4k random read, queue depth 32",
             rw="randread", bs="4k", iodepth=32, metrics=(IOPS, P50, P99)),
    fio_loop("fuse-randwrite-4k-qd32", "FUSE + loop: 4k random write, queue depth 32",
             rw="randwrite", bs="4k", iodepth=32, metrics=(IOPS, P50, P99)),
    fio_loop("fuse-seqread-1m-qd8", "FUSE + loop: 1M sequential read, queue depth 8",
             rw="read", bs="1M", iodepth=8, metrics=(MBPS,)),
    fio_loop("fuse-seqwrite-1m-qd8", "FUSE + loop: 1M sequential write, queue depth 8",
             rw="write", bs="1M", iodepth=8, metrics=(MBPS,)),
]
